python3 -m venv .venv
. .venv/bin/activate
python -m pip install --upgrade pip
python -m pip install --group examples
