# The CI step: every package of the lock checked; --strict makes a package it
# could not check fail the step instead of passing quietly
pip-audit --strict --require-hashes --disable-pip -r requirements.lock.txt
