"""The pieces of deploy_master.py's command line: output, the gate, the audit commands."""
