"""graphite-web settings: Debian's graphite-web, pointed at our carbon's files.

graphite-web imports the module named by GRAPHITE_SETTINGS_MODULE instead of
Debian's /etc/graphite/local_settings.py; this one reads the environment.
"""

import os

STORAGE_DIR = os.environ["GRAPHITE_DIR"] + "/storage"
WHISPER_DIR = STORAGE_DIR + "/whisper"
STANDARD_DIRS = [WHISPER_DIR]
LOG_DIR = os.environ["GRAPHITE_DIR"] + "/log"
INDEX_FILE = STORAGE_DIR + "/index"
CONF_DIR = os.environ["GRAPHITE_DIR"]
# Points still in carbon's cache, not yet on disk, are read through this port.
CARBONLINK_HOSTS = ["127.0.0.1:" + os.environ["CARBON_QUERY_PORT"]]
TAGDB = ""  # tags are off in carbon.conf too
SECRET_KEY = os.environ["GRAPHITE_SECRET_KEY"]  # never a default in the file
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
LOG_RENDERING_PERFORMANCE = False
LOG_CACHE_PERFORMANCE = False
DEFAULT_XFILES_FACTOR = 0
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {
    "default": {"NAME": STORAGE_DIR + "/graphite.db", "ENGINE": "django.db.backends.sqlite3"}
}
