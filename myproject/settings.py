"""
Settings, read from the environment (12-factor).

With nothing set this is the embedded default: SQLite, frames kept in a file every process of
the machine shares (var/), the in-memory channel layer. Production sets `DATABASE_URL`
(MySQL/MariaDB) and `REDIS_URL` (the frames' broker, the channel layer, the shared cache). Every
variable and its default is in docs/operations.md.
"""

import datetime
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()


def _rate(name: str, default: str) -> str | None:
    """A throttle rate from the environment; `off` disables it (benchmarks)."""
    value = env.str(name, default=default).strip()
    return None if value.lower() == "off" else value


def _duration(name: str, default: str) -> datetime.timedelta:
    """A duration from the environment: a positive number and a unit, as in `30d`, `12h`,
    `90m`, `3600s`."""
    value = env.str(name, default=default).strip().lower()
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    match = re.fullmatch(r"([0-9]+) *([dhms])", value)
    try:
        duration = datetime.timedelta(**{units[match[2]]: int(match[1])}) if match else None
    except OverflowError:
        duration = None
    if not duration:
        raise ImproperlyConfigured(f"{name}: a positive number and a unit (30d, 12h, 90m, 3600s).")
    return duration


# https://docs.djangoproject.com/en/5.2/ref/settings/#core-settings
# ------------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=on for development).")
    SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production"
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
ROOT_URLCONF = "myproject.urls"
WSGI_APPLICATION = "myproject.wsgi.application"
ASGI_APPLICATION = "myproject.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Apps
# ------------------------------------------------------------------------------
DJANGO_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_guid",
]
LOCAL_APPS = ["myproject.realtime", "identity", "catalog", "web"]
# The consumers of docs/consumers.md (a chat room, sync and async), routed under /examples/.
if env.bool("DJANGO_EXAMPLES", default=False):
    LOCAL_APPS.append("examples")
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    # First: a client's X-Request-ID that is no request id is dropped (myproject.request_id),
    # then every log line of the request carries its id, every response says it.
    "myproject.request_id.request_id_middleware",
    "django_guid.middleware.guid_middleware",
    "myproject.metrics.MetricsMiddleware",
    "myproject.middleware.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "myproject.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database
# https://docs.djangoproject.com/en/5.2/ref/databases/#mysql-notes
# ------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"]["OPTIONS"] = {
        "charset": "utf8mb4",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        **DATABASES["default"].get("OPTIONS", {}),
    }
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    # Persistent connections, made safe: a connection the server dropped while idle
    # (wait_timeout) is detected and replaced at the start of the next request.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# Read replicas (myproject/replicas/): one alias per URL (`replica1`, ...), the same database
# as "default" seen through replication. Reads go to a healthy replica; writes, reads inside a
# write and reads that must see a client's own writes go to the primary (or wait for them).
DATABASE_REPLICAS = []
for _number, _url in enumerate(env.list("DATABASE_REPLICA_URLS", default=[]), start=1):
    _replica = env.db_url_config(_url)
    if _replica["ENGINE"] != "django.db.backends.mysql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URLS: MariaDB replicas (mysql://...) only.")
    _replica["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        # A replica that does not answer is skipped: never wait long for it to accept.
        "connect_timeout": 2,
        **_replica.get("OPTIONS", {}),
    }
    _replica["CONN_MAX_AGE"] = DATABASES["default"].get("CONN_MAX_AGE", 0)
    _replica["CONN_HEALTH_CHECKS"] = True
    # Tests: the replica is the test database itself (no second one is created).
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES[f"replica{_number}"] = _replica
    DATABASE_REPLICAS.append(f"replica{_number}")
if DATABASE_REPLICAS:
    DATABASE_ROUTERS = ["myproject.replicas.router.ReplicaRouter"]
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django_guid.middleware.guid_middleware") + 1,
        "myproject.replicas.middleware.ReplicaMiddleware",
    )
# A replica further behind than this (Seconds_Behind_Master) is skipped until it catches up.
REPLICA_MAX_LAG = env.float("DJANGO_REPLICA_MAX_LAG", default=5.0)
# How long a read waits for a replica to apply the writes it must see before it goes to the
# primary instead (MASTER_GTID_WAIT).
REPLICA_GTID_WAIT = env.float("DJANGO_REPLICA_GTID_WAIT", default=0.25)

# Auth
# https://docs.djangoproject.com/en/5.2/topics/auth/customizing/
# ------------------------------------------------------------------------------
AUTH_USER_MODEL = "identity.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# A token's life from its creation; older ones are refused (identity.authentication).
TOKEN_TTL = _duration("DJANGO_TOKEN_TTL", "30d")

# Static files (collected for nginx)
# ------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "var" / "static")

# Redis: realtime positions and history (myproject.realtime), the channel layer, the cache every
# process shares (throttle counters, tickets) and the WebSocket quotas.
# ------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# With Sentinel, every Redis user asks the Sentinels for the primary and follows a failover;
# REDIS_URL then gives only the database number and the password.
REDIS_SENTINELS = [
    (host, int(port))
    for host, _, port in (item.rpartition(":") for item in env.list("REDIS_SENTINELS", default=[]))
]
REDIS_SENTINEL_MASTER = env.str("REDIS_SENTINEL_MASTER", default="mymaster")
_redis_url = urlsplit(REDIS_URL)
REDIS_DB = int(_redis_url.path.strip("/") or 0)
REDIS_PASSWORD = unquote(_redis_url.password) if _redis_url.password else None
# Short socket timeouts: a dead or stalled Redis must not hold a request for long.
REDIS_SOCKET_TIMEOUT = env.float("DJANGO_REDIS_TIMEOUT", default=0.5)
# Behind Sentinel, a frame is announced only once this many replicas hold it (at most
# REDIS_WAIT_TIMEOUT_MS later), so a failover cannot take back a frame a client has seen.
REDIS_WAIT_REPLICAS = env.int("DJANGO_REDIS_WAIT_REPLICAS", default=1 if REDIS_SENTINELS else 0)
REDIS_WAIT_TIMEOUT_MS = env.int("DJANGO_REDIS_WAIT_TIMEOUT_MS", default=100)
if REDIS_URL or REDIS_SENTINELS:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "myproject",
            "OPTIONS": {
                # Throttles fail open while Redis is down rather than failing requests.
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
    if REDIS_SENTINELS:
        CACHES["default"]["LOCATION"] = f"redis://{REDIS_SENTINEL_MASTER}/{REDIS_DB}"
        CACHES["default"]["OPTIONS"].update(
            CLIENT_CLASS="django_redis.client.SentinelClient",
            CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
            SENTINELS=REDIS_SENTINELS,
            PASSWORD=REDIS_PASSWORD,
        )
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Channels' channel layer: groups, group_send and handlers by type, what consumers of one's own
# build with (signals and presence of the check channel go through it); ephemeral, unlike the
# numbered frames of myproject.realtime. Its pub/sub channels belong to the Redis server, not to
# a database: the prefix carries the database's number.
# https://channels.readthedocs.io/en/stable/topics/channel_layers.html
# ------------------------------------------------------------------------------
if REDIS_URL or REDIS_SENTINELS:
    _layer_host: dict[str, object] = {
        "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
        "socket_timeout": REDIS_SOCKET_TIMEOUT,
    }
    if REDIS_SENTINELS:
        _layer_host.update(
            sentinels=REDIS_SENTINELS,
            master_name=REDIS_SENTINEL_MASTER,
            sentinel_kwargs={"socket_timeout": REDIS_SOCKET_TIMEOUT},
            db=REDIS_DB,
            password=REDIS_PASSWORD,
        )
    else:
        _layer_host["address"] = REDIS_URL
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [_layer_host], "prefix": f"myproject:{REDIS_DB}:layer:"},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Django REST framework
# https://www.django-rest-framework.org/api-guide/settings/
# ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "identity.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "myproject.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "DEFAULT_PARSER_CLASSES": ["myproject.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "myproject.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "myproject.filters.FilterBackend",
        "myproject.filters.SearchFilter",
        "myproject.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _rate("DJANGO_THROTTLE_ANON", "600/min"),
        "user": _rate("DJANGO_THROTTLE_USER", "6000/min"),
        "login": _rate("DJANGO_THROTTLE_LOGIN", "10/min"),
    },
    # Proxies in front of Django whose X-Forwarded-For entry is trusted (nginx: 1).
    "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=0),
    "EXCEPTION_HANDLER": "myproject.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "myproject.schema.AutoSchema",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "myproject API",
    "DESCRIPTION": "Users (identity) and the product catalog; bulk verbs on every list.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "myproject.schema.add_error_responses",
    ],
    # The docs UI is served from our own static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Limits (unrestricted resource consumption)
# ------------------------------------------------------------------------------
BULK_MAX_BATCH = env.int("DJANGO_BULK_MAX_BATCH", default=10000)
# A full batch must fit; nginx's client_max_body_size agrees with this.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_MAX_BODY_BYTES", default=32 * 1024 * 1024)
WS_MAX_FRAME = env.int("DJANGO_WS_MAX_FRAME", default=65536)
WS_CHECK_RATE = _rate("DJANGO_WS_CHECK_RATE", "50/s")
WS_MAX_SOCKETS_PER_USER = env.int("DJANGO_WS_MAX_SOCKETS_PER_USER", default=50)
WS_MESSAGE_RATE = _rate("DJANGO_WS_MESSAGE_RATE", "20/s")
WS_MAX_SUBSCRIPTIONS = env.int("DJANGO_WS_MAX_SUBSCRIPTIONS", default=20)
WS_SUBSCRIBE_RATE = _rate("DJANGO_WS_SUBSCRIBE_RATE", "10/s")
WS_SIGNAL_RATE = _rate("DJANGO_WS_SIGNAL_RATE", "20/s")
# Bytes written to a socket and not yet taken by its client: past it, the socket is closed (4408)
# and resumes from the history when it reconnects (myproject.realtime.sink).
WS_MAX_BUFFER = env.int("DJANGO_WS_MAX_BUFFER", default=1024 * 1024)
# Change events on every write (off: for benchmarks only, to measure what they cost).
REALTIME_EVENTS = env.bool("DJANGO_REALTIME_EVENTS", default=True)
# Frames kept per topic for resuming, and for how long after the topic's last frame.
WS_HISTORY_SIZE = env.int("DJANGO_WS_HISTORY_SIZE", default=1000)
WS_HISTORY_TTL = env.int("DJANGO_WS_HISTORY_TTL", default=300)
# Without Redis: the history every process of this machine shares (myproject.realtime.broker).
WS_LOCAL_HISTORY = env.path("DJANGO_WS_LOCAL_HISTORY", default=BASE_DIR / "var" / "realtime.db")
SEARCH_MAX_TERMS = env.int("DJANGO_SEARCH_MAX_TERMS", default=10)

# Security: TLS ends at nginx
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
# ------------------------------------------------------------------------------
HTTPS = env.bool("DJANGO_HTTPS", default=not DEBUG)
# CSRF failures answer JSON, as every other error does.
CSRF_FAILURE_VIEW = "myproject.exceptions.csrf_failure"
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # Load balancers and process managers probe over plain HTTP on loopback.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Logging: to stderr, collected by the process manager; one JSON object per line with
# DJANGO_LOG_FORMAT=json. Every line of a request carries its id (`X-Request-ID`: nginx's, or
# a new one), which the response carries too.
# https://docs.djangoproject.com/en/5.2/topics/logging/
# ------------------------------------------------------------------------------
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    # nginx's $request_id is 32 hex digits, which is a valid UUID; anything else is replaced
    # (myproject.request_id first drops what uuid.UUID() would take but is no request id).
    "VALIDATE_GUID": True,
    "UUID_FORMAT": "hex",
    "RETURN_HEADER": True,
}
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("DJANGO_LOG_FORMAT is `text` or `json`.")
# Every record's message and extras are escaped and stripped of secrets (myproject.logs).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "django_guid.log_filters.CorrelationId"},
        "redact": {"()": "myproject.logs.Redact"},
    },
    "formatters": {
        "text": {
            "()": "myproject.logs.TextFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s",
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(correlation_id)s %(message)s",
            "rename_fields": {
                "asctime": "time",
                "levelname": "level",
                "name": "logger",
                "correlation_id": "request_id",
            },
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own console handler (in debug) would print every django.request line a
        # second time: everything goes through the root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django_guid": {"level": "WARNING"},
    },
}
