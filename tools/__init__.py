"""Tools handed to auditors; verify_log.py stands alone (standard library + cryptography)."""
