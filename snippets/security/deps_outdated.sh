# Every installed package that has a newer release on the index pip reads
pip list --outdated
