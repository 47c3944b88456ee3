"""
The split stack as the benchmarks drive it: `scripts/stack.sh` against a private database
(`myproject_bench`, dropped and recreated each run) and a private redis-server on a free port,
throttles off, under the machine-wide lock that test sessions take too (the ports are fixed).

Besides the stack itself the benchmarks need a few processes of their own, all on loopback and
all stopped by `BenchStack.close()`: a second nginx (HTTP to daphne, and to the constant
uWSGI app of the ceiling bench) and that constant uWSGI app.
"""

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import MySQLdb

from tests.live import PrivateRedis, alive, answers, descendants, free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
RUN = ROOT / "var" / "run"
LOG = ROOT / "var" / "log"
WORK = ROOT / "var" / "bench"
BENCH_DB = "myproject_bench"
DAPHNE_PORTS = (8080, 8081)  # scripts/stack.sh's
STACK_PORTS = (8088, 8000, 8001, *DAPHNE_PORTS)
NGINX = "http://127.0.0.1:8088"
UWSGI = "http://127.0.0.1:8000"
LOCK = Path("/tmp/myproject-stack.lock")
ADMIN = ("benchadmin", "bench-Admin-secret-42")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"bench: {message}", flush=True)


def wait_until(condition: Any, timeout: float, what: str) -> None:
    """Poll `condition` until true; raise after `timeout` seconds (every wait is bounded)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# --- /proc ----------------------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """`pid` and every process below it."""
    return [pid, *descendants(pid)]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, plus those of its reaped children (cutime + cstime), so a
    uWSGI worker recycled during a run still counts: its time moves to the master."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / CLK_TCK


def cpu_ns(pid: int) -> int:
    """Nanoseconds every thread of `pid` has run (the scheduler's own count, schedstat): a
    burst of ~0.1 s is far below /proc/<pid>/stat's 10 ms ticks."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


def pss_kib(pid: int) -> int:
    """Proportional set size: private pages plus a fair share of the shared ones."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss in /proc/{pid}/smaps_rollup")


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (every core)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK


def pid_file(name: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int((RUN / f"{name}.pid").read_text().strip())
        return pid if alive(pid) else None
    return None


class CpuMeter:
    """CPU seconds of named process groups over a run, the machine's too: a saturated client
    or a neighbour eating the cores shows in the report instead of hiding in the numbers."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.before: dict[str, float] = {}
        self.started = 0.0
        self.busy = 0.0

    def _sample(self) -> dict[str, float]:
        sample = {}
        for name, roots in self.groups.items():
            pids = {pid for root in roots for pid in tree(root)}
            sample[name] = sum(cpu_seconds(pid) for pid in pids)
        return sample

    def __enter__(self) -> "CpuMeter":
        self.before = self._sample()
        self.busy = machine_busy()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self.started
        after = self._sample()
        self.used = {name: max(0.0, after[name] - self.before.get(name, 0.0)) for name in after}
        self.machine = machine_busy() - self.busy

    def report(self, client_cpu: float | None = None) -> dict[str, Any]:
        """Cores used by each group (CPU seconds / wall seconds), the client's and the rest."""
        cores = {name: round(used / self.wall, 3) for name, used in self.used.items()}
        if client_cpu is not None:
            cores["client"] = round(client_cpu / self.wall, 3)
        known = sum(cores.values())
        machine = self.machine / self.wall
        return {
            "wall_s": round(self.wall, 3),
            "cores": cores,
            "machine_cores": round(machine, 3),
            "other_cores": round(max(0.0, machine - known), 3),
        }


def self_cpu() -> float:
    times = os.times()
    return times.user + times.system


# --- the stack --------------------------------------------------------------------------------


def uwsgi_ini_default(option: str) -> str:
    """`processes` or `threads` as uwsgi.ini sets them when the environment does not."""
    for line in (ROOT / "uwsgi.ini").read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip() == option and value.strip().isdigit():
            return value.strip()
    raise RuntimeError(f"no {option} in uwsgi.ini")


def mysql() -> Any:
    return MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")


def drop_database() -> None:
    connection = mysql()
    try:
        connection.cursor().execute(f"DROP DATABASE IF EXISTS `{BENCH_DB}`")
    finally:
        connection.close()


def stop_pid(pid: int | None, timeout: float = 20) -> None:
    """SIGTERM one process we started, SIGKILL it if it lingers; never anything else."""
    if pid is None or not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), 10, f"pid {pid} to die")


@dataclass
class BenchStack:
    """The stack for one `make bench` run. Use as a context manager (see `running`)."""

    redis: PrivateRedis = field(default_factory=PrivateRedis)
    env: dict[str, str] = field(default_factory=dict)
    token: str = ""
    category: str = ""
    app_env: dict[str, str] = field(default_factory=dict)
    extra: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "UWSGI_"))}
        secret = (
            (ROOT / "var" / "secret_key").read_text().strip()
            if (ROOT / "var" / "secret_key").exists()
            else "bench-only-secret-key-not-for-production-use-0123456789"
        )
        env.update(
            DATABASE_URL=f"mysql://root@127.0.0.1:3306/{BENCH_DB}",
            REDIS_URL=self.redis.url,
            DJANGO_SECRET_KEY=secret,
            DJANGO_DEBUG="off",
            DJANGO_HTTPS="off",
            DJANGO_NUM_PROXIES="1",
            # Benchmarks measure the servers, not the limits (DESIGN.md: `off` for benchmarks).
            DJANGO_THROTTLE_ANON="off",
            DJANGO_THROTTLE_USER="off",
            DJANGO_THROTTLE_LOGIN="off",
            DJANGO_WS_CHECK_RATE="off",
            DJANGO_WS_MESSAGE_RATE="off",
            DJANGO_WS_MAX_SOCKETS_PER_USER="100000",
            DJANGO_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            PATH=f"{BIN}:{env.get('PATH', '')}",
        )
        env.pop("MYPROJECT_RUN_DIR", None)
        return env

    def script(self, *args: str, timeout: float = 180) -> None:
        result = subprocess.run(
            [str(ROOT / "scripts" / "stack.sh"), *args], cwd=ROOT, env=self.env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"stack.sh {' '.join(args)} failed:\n{result.stdout}{result.stderr}")

    def start(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "services.sh")], check=True, capture_output=True)
        self.env = self.base_env()
        self.app_env = {}
        self.script("stop")
        busy = [port for port in STACK_PORTS if answers(port)]
        if busy:
            raise RuntimeError(f"ports {busy} are in use by something other than the stack")
        drop_database()
        self.redis.start()
        log(f"starting the stack (redis :{self.redis.port}, db {BENCH_DB})")
        self.script("start")
        self.manage(
            "createsuperuser", "--noinput", "--name", ADMIN[0], "--email", "bench@example.com",
            extra_env={"DJANGO_SUPERUSER_PASSWORD": ADMIN[1]},
        )  # fmt: skip
        response = httpx.post(
            f"{NGINX}/identity/token/",
            json={"username": ADMIN[0], "password": ADMIN[1]},
            timeout=30,
        )
        response.raise_for_status()
        self.token = response.json()["token"]
        created = httpx.post(
            f"{NGINX}/catalog/categories/", headers=self.auth, timeout=30,
            json={"name": "Bench", "slug": "bench", "description": "benchmark writes"},
        )  # fmt: skip
        created.raise_for_status()
        self.category = created.json()["uuid"]

    def close(self) -> None:
        for name in list(self.extra):
            self.stop_extra(name)
        try:
            self.script("stop")
        finally:
            self.redis.stop()
            with contextlib.suppress(Exception):
                drop_database()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}

    def manage(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args], cwd=ROOT,
            env={**self.env, **self.app_env, **(extra_env or {})},
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout}{result.stderr}")
        return result.stdout

    # --- restarting the application servers with another configuration ---------------------

    def restart_apps(self, daphnes: int = len(DAPHNE_PORTS), **app_env: str) -> None:
        """uWSGI and daphne again, with another number of daphne processes (the first `daphnes`
        of the stack's; nginx's upstream skips the stopped ones) or environment (uWSGI sizing,
        DJANGO_REALTIME_EVENTS, ...; none: the stack's own); nginx stays. They are started the
        way stack.sh starts them, so that `stack.sh stop` still finds them."""
        self.app_env = dict(app_env)
        env = {**self.env, **self.app_env}
        self.restart_uwsgi(env)
        self.restart_daphne(env, DAPHNE_PORTS[:daphnes])

    def set_uwsgi_env(self, **uwsgi_env: str) -> None:
        """uWSGI alone again, with `uwsgi_env` on top of the stack's environment (daphne, and
        the sockets it holds, stay)."""
        kept = {k: v for k, v in self.app_env.items() if k not in uwsgi_env}
        self.app_env = {**kept, **{k: v for k, v in uwsgi_env.items() if v}}
        self.restart_uwsgi({**self.env, **self.app_env})

    def resize_uwsgi(self, processes: int | None = None, threads: int | None = None) -> None:
        """uWSGI again with UWSGI_PROCESSES x UWSGI_THREADS (None: uwsgi.ini's defaults)."""
        self.set_uwsgi_env(
            UWSGI_PROCESSES=str(processes) if processes else "",
            UWSGI_THREADS=str(threads or 1) if processes else "",
        )

    def restart_uwsgi(self, env: dict[str, str]) -> None:
        stop_pid(pid_file("uwsgi"), timeout=40)
        wait_until(lambda: not answers(8000) and not answers(8001), 30, "uWSGI's ports to close")
        with (LOG / "uwsgi.log").open("ab") as out:
            subprocess.Popen(
                [str(BIN / "uwsgi"), "--ini", str(ROOT / "uwsgi.ini")], cwd=ROOT, env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_until(lambda: ready(f"{UWSGI}/readyz"), 60, "uWSGI to be ready")
        wait_until(lambda: ready(f"{NGINX}/readyz"), 30, "nginx -> uWSGI to be ready")
        self.warm()

    def restart_daphne(self, env: dict[str, str], ports: tuple[int, ...]) -> None:
        for port in DAPHNE_PORTS:
            stop_pid(pid_file(f"daphne-{port}"))
            wait_until(lambda port=port: not answers(port), 30, f"daphne :{port} to close")
        for port in ports:
            with (LOG / f"daphne-{port}.log").open("ab") as out:
                proc = subprocess.Popen(
                    [str(ROOT / "deploy" / "daphne.sh"), str(port)], cwd=ROOT, env=env,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            (RUN / f"daphne-{port}.pid").write_text(f"{proc.pid}\n")
        for port in ports:
            url = f"http://127.0.0.1:{port}/readyz"
            wait_until(lambda url=url: ready(url), 60, f"daphne :{port} to be ready")

    def warm(self) -> None:
        """A few requests per worker (through nginx: uWSGI's HTTP port does not keep
        connections alive) so that lazily loaded code is not timed."""
        with httpx.Client(timeout=30) as client:
            for _ in range(24):
                client.get(f"{NGINX}/catalog/items/?page_size=50").raise_for_status()

    # --- processes of the benchmarks' own ----------------------------------------------------

    def start_extra(self, name: str, argv: list[str], port: int, env: dict | None = None) -> int:
        with (LOG / f"bench-{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env={**self.env, **self.app_env, **(env or {})},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.extra[name] = proc
        wait_until(lambda: answers(port) or proc.poll() is not None, 60, f"{name} on :{port}")
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited; see var/log/bench-{name}.log")
        return proc.pid

    def stop_extra(self, name: str) -> None:
        proc = self.extra.pop(name, None)
        if proc is not None:
            stop_pid(proc.pid, timeout=30)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def extra_uwsgi(self, name: str, module: str, env: dict[str, str] | None = None) -> int:
        """A uWSGI of the benchmarks' own running `module`, sized like the stack's, on free
        ports (`ports[name]`: uwsgi protocol, `ports[name + "_http"]`: HTTP); its HTTP port."""
        if name not in self.extra:
            port = self.ports[name] = free_port()
            http_port = self.ports[f"{name}_http"] = free_port()
            processes = self.app_env.get("UWSGI_PROCESSES", uwsgi_ini_default("processes"))
            threads = self.app_env.get("UWSGI_THREADS", uwsgi_ini_default("threads"))
            argv = [
                str(BIN / "uwsgi"), "--strict", "--master", "--need-app", "--single-interpreter",
                "--chdir", str(ROOT), "--module", module,
                "--processes", processes, "--threads", threads, "--lazy-apps",
                "--enable-threads", "--die-on-term", "--buffer-size", "32768",
                "--post-buffering", "65536", "--listen", "1024",
                "--socket", f"127.0.0.1:{port}", "--http-socket", f"127.0.0.1:{http_port}",
                "--log-format", '%(addr) [%(ltime)] "%(method) %(var.PATH_INFO) %(proto)" '
                "%(status) %(rsize) %(msecs)ms pid=%(pid) worker=%(wid)",
            ]  # fmt: skip
            self.start_extra(name, argv, http_port, env)
            wait_until(lambda: ready(f"http://127.0.0.1:{http_port}/readyz"), 60, name)
        return self.ports[f"{name}_http"]

    def constant_uwsgi(self, body: Path) -> int:
        """The ceiling's constant JsonResponse, under uWSGI sized like uwsgi.ini."""
        self.extra_uwsgi(
            "constant", "bench.constant_app:application", {"BENCH_CONSTANT_JSON": str(body)}
        )
        return self.extra["constant"].pid

    def bench_nginx(self) -> int:
        """A second nginx, configured like nginx.conf, in front of daphne's HTTP (one process,
        and both) and of the constant app (when started before it)."""
        if "nginx" not in self.extra:
            self.ports["nginx_daphne"] = free_port()
            self.ports["nginx_daphnes"] = free_port()
            self.ports["nginx_constant"] = free_port()
            prefix = WORK / "nginx"
            for sub in ("logs", "tmp"):
                (prefix / sub).mkdir(parents=True, exist_ok=True)
            template = (Path(__file__).parent / "nginx-bench.conf").read_text()
            conf = prefix / "nginx.conf"
            conf.write_text(
                template.replace("@DAPHNE_PORT@", str(self.ports["nginx_daphne"]))
                .replace("@DAPHNES_PORT@", str(self.ports["nginx_daphnes"]))
                .replace("@CONSTANT_PORT@", str(self.ports["nginx_constant"]))
                .replace("@CONSTANT_UPSTREAM@", str(self.ports.get("constant", 9)))
                .replace("@ROOT@", str(ROOT))
            )
            nginx = shutil.which("nginx") or "/usr/sbin/nginx"
            self.start_extra(
                "nginx", [nginx, "-p", f"{prefix}/", "-c", str(conf), "-e", "logs/error.log"],
                self.ports["nginx_daphne"],
            )  # fmt: skip
        return self.extra["nginx"].pid

    # --- who is who, for the CPU meter --------------------------------------------------------

    def groups(self, *names: str) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for name in ("nginx", "uwsgi"):
            pid = pid_file(name)
            if pid:
                found[name] = [pid]
        daphnes = [pid_file(f"daphne-{port}") for port in DAPHNE_PORTS]
        found["daphne"] = [pid for pid in daphnes if pid]
        if "nginx" in self.extra:
            found["nginx"] = [*found.get("nginx", []), self.extra["nginx"].pid]
        for name, proc in self.extra.items():
            if name.startswith(("constant", "events")):
                found[f"uwsgi-{name}"] = [proc.pid]
        if self.redis.proc:
            found["redis"] = [self.redis.proc.pid]
        mariadb = subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True, text=True)
        found["mariadb (shared)"] = [int(pid) for pid in mariadb.stdout.split()]
        return {name: pids for name, pids in found.items() if not names or name in names}

    def meter(self) -> CpuMeter:
        return CpuMeter(self.groups())


@contextlib.contextmanager
def running() -> Iterator[BenchStack]:
    """The whole run holds the machine-wide stack lock: tests and benchmarks take turns."""
    WORK.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        log(f"waiting for {LOCK}")
        fcntl.flock(lock, fcntl.LOCK_EX)
        stack = BenchStack()
        try:
            stack.start()
            yield stack
        finally:
            stack.close()
    sys.stdout.flush()
