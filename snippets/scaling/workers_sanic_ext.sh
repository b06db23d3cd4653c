# sanic-ext, for fibonacci_health_monitor.py only: install it in that service's
# own environment, not beside the other examples (it would extend them all).
pip install sanic-ext==25.12.0
