python3 -m venv .venv
. .venv/bin/activate
python -m pip install -r requirements/examples.txt
