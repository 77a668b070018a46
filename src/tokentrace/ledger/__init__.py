"""The ledger: the local record of every call and task run."""
