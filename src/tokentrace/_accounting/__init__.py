"""Accounting: the running sums behind Task.totals (tally), budgets and their limits (budget), the task
runs calls roll up into (task) and the decorator and context manager that open them (scope).
"""
