"""Apply: run a plan's steps per account, in dependency order, accounts in parallel."""
