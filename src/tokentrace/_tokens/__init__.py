"""Token counts: a call's usage as its provider reported it (usage), and offline token counting for the
requests and streams that report none (tokenize).
"""
