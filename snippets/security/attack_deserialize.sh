# Each payload tries to write marker.txt: run them in a scratch directory.
demo="$PWD/examples/security/deserialize_demo.py"
cd "$(mktemp -d)"
for kind in pickle yaml eval; do
    python "$demo" "$kind" marker.txt           # the safe loader refuses the payload
    python "$demo" "$kind" marker.txt --unsafe  # the dangerous one runs it
    rm -f marker.txt
done
