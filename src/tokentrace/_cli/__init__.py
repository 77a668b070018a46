"""The tokentrace command: argument parsing and dispatch (main), shared reading of the ledger and one-
line errors (common), tables that fit the terminal (tables), the task and price commands (tasks,
pricing), the offline demo (demo) and the local dashboard (ui).
"""
