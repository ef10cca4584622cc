"""`chaos infra install`: fetch and build the real components into a cache outside the repo.

  Kafka 4.3.1 (KRaft)  Maven Central, resolved by Maven from resources/kafka-pom.xml (broker, tools, Connect)
  Debezium 3.6.1       Maven Central plugin archive of the Postgres connector, unpacked as a Connect plugin
  Toxiproxy 2.12.0     built from the Go module proxy with `go install`
  Apicurio Registry    Maven Central application archive (3.3.3 on Java 21+, else 2.6.13.Final on Java 17),
                       the schema registry (Confluent's API at /apis/ccompat/v7), started only when asked for
  PostgreSQL 15        Debian's package (found, not installed: that needs root and apt)

Idempotent: a component whose folder carries a completion marker is not fetched again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from harness.config import Settings, env_path
from harness.errors import InstallError

__all__ = ["DEBEZIUM_VERSION", "KAFKA_VERSION", "REGISTRY_FALLBACK", "REGISTRY_PRIMARY", "TOXIPROXY_VERSION",
           "Installation", "Java", "RegistryInstall", "RegistryRelease", "find_javas", "install", "locate_registry",
           "pick_registry"]

KAFKA_VERSION = "4.3.1"
DEBEZIUM_VERSION = "3.6.1.Final"
_DEBEZIUM_ARTIFACT = f"io.debezium:debezium-connector-postgres:{DEBEZIUM_VERSION}:tar.gz:plugin"
TOXIPROXY_VERSION = "2.12.0"
POSTGRES_MAJOR = 15
JVM_ROOT = Path("/usr/lib/jvm")  # where Debian and the Temurin packages put their JDKs
_MARKER = ".complete"

Report = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Installation:
    """Where the installed components live. ``locate`` checks they are all there."""

    kafka_libs: Path
    toxiproxy_bin: Path
    postgres_bin: Path
    java: Path
    connect_plugins: Path  # Connect's plugin.path: one sub-folder per plugin (Debezium's Postgres connector)

    @classmethod
    def paths(cls, settings: Settings) -> Installation:
        root = settings.install_dir
        return cls(
            kafka_libs=root / f"kafka-{KAFKA_VERSION}" / "libs",
            toxiproxy_bin=root / f"toxiproxy-{TOXIPROXY_VERSION}" / "toxiproxy-server",
            postgres_bin=_postgres_bin(),
            java=_java(),
            connect_plugins=root / f"debezium-{DEBEZIUM_VERSION}" / "plugins",
        )

    def require_debezium(self) -> None:
        """Debezium is needed only by the cdc pipeline, so it is checked when Connect starts."""
        if not (self.connect_plugins.parent / _MARKER).exists():
            raise InstallError(
                f"Debezium {DEBEZIUM_VERSION} Postgres connector is not installed (expected in {self.connect_plugins}); "
                "the cdc pipeline needs it. Run `chaos infra install`."
            )

    @classmethod
    def locate(cls, settings: Settings) -> Installation:
        inst = cls.paths(settings)
        missing = []
        if not (inst.kafka_libs.parent / _MARKER).exists():
            missing.append(f"Kafka {KAFKA_VERSION} (expected in {inst.kafka_libs})")
        if not inst.toxiproxy_bin.exists():
            missing.append(f"Toxiproxy {TOXIPROXY_VERSION} (expected at {inst.toxiproxy_bin})")
        if missing:
            raise InstallError("not installed: " + "; ".join(missing) + ". Run `chaos infra install` first.")
        _check_postgres(inst.postgres_bin)
        return inst


def _postgres_bin() -> Path:
    return env_path("CHAOS_PG_BIN", f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin")


def _check_postgres(bin_dir: Path) -> None:
    for tool in ("initdb", "postgres"):
        if not (bin_dir / tool).exists():
            raise InstallError(
                f"PostgreSQL {POSTGRES_MAJOR} server binary {bin_dir / tool} not found. Install it with "
                f"`apt-get update && apt-get install -y postgresql-{POSTGRES_MAJOR}` "
                "(or point CHAOS_PG_BIN at a folder holding initdb and postgres)."
            )


def _java() -> Path:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return Path(home) / "bin" / "java"
    found = shutil.which("java")
    return Path(found) if found else Path("java")


def install(settings: Settings, report: Report = print) -> Installation:
    """Install what is missing; say what was already there."""
    inst = Installation.paths(settings)
    _check_postgres(inst.postgres_bin)
    report(f"postgres {POSTGRES_MAJOR}: found in {inst.postgres_bin}")
    _check_java(inst.java)
    _install_kafka(inst, report)
    _install_debezium(inst, report)
    _install_toxiproxy(inst, report)
    _install_registry(settings, report)
    return Installation.locate(settings)


def java_major(java: Path) -> int:
    """The major version ``java -version`` reports (``17``, ``25``); 0 when it does not run or says nothing usable."""
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    first = ((out.stderr or out.stdout).splitlines() or [""])[0]
    version = first.split('"')[1] if first.count('"') >= 2 else ""
    head = version.split(".")[0].split("-")[0]
    return int(head) if head.isdigit() else 0


@dataclass(frozen=True, slots=True)
class Java:
    path: Path
    major: int


def find_javas(jvm_root: Path = JVM_ROOT) -> tuple[Java, ...]:
    """Every runnable java: JAVA_HOME's, the one on PATH, and each JDK under ``jvm_root``; newest first.

    Kafka runs on whichever java JAVA_HOME or PATH names (17 here); the schema registry 3.x needs 21+,
    which is usually an extra JDK under /usr/lib/jvm that is on no PATH.
    """
    candidates = [_java()]
    if jvm_root.is_dir():
        candidates += sorted(jvm_root.glob("*/bin/java"))
    seen: set[Path] = set()
    found = []
    for path in candidates:
        real = path.resolve() if path.exists() else path
        if real in seen or not path.exists():
            continue
        seen.add(real)
        major = java_major(path)
        if major:
            found.append(Java(path, major))
    return tuple(sorted(found, key=lambda j: -j.major))


@dataclass(frozen=True, slots=True)
class RegistryRelease:
    """One Apicurio Registry release: its Maven coordinates and the Java it needs."""

    version: str
    min_java: int
    artifact: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


REGISTRY_PRIMARY = RegistryRelease("3.3.3", 21, "io.apicurio:apicurio-registry-app:3.3.3:tar.gz:all")
REGISTRY_FALLBACK = RegistryRelease("2.6.13.Final", 17, "io.apicurio:apicurio-registry-app:2.6.13.Final:tar.gz:all")


@dataclass(frozen=True, slots=True)
class RegistryInstall:
    """An installed Apicurio Registry and the java that runs it."""

    release: RegistryRelease
    launcher: Path  # quarkus-run.jar (3.x) or the uber *-runner.jar (2.x)
    java: Java


def _registry_home(settings: Settings, release: RegistryRelease) -> Path:
    return settings.install_dir / f"apicurio-registry-{release.version}"


def pick_registry(javas: tuple[Java, ...]) -> tuple[RegistryRelease, Java] | None:
    """The release to run and the java for it: 3.3.3 on the newest java 21+, else 2.6.13.Final on 17+."""
    for release in (REGISTRY_PRIMARY, REGISTRY_FALLBACK):
        fit = next((j for j in javas if j.major >= release.min_java), None)
        if fit is not None:
            return release, fit
    return None


def _installed_launcher(settings: Settings, release: RegistryRelease) -> Path | None:
    marker = _registry_home(settings, release) / _MARKER
    try:
        launcher = _registry_home(settings, release) / marker.read_text().strip()
    except OSError:
        return None
    return launcher if launcher.is_file() else None


def locate_registry(settings: Settings, jvm_root: Path = JVM_ROOT) -> RegistryInstall:
    """The installed registry to start, with its java; InstallError saying what to install when there is none."""
    javas = find_javas(jvm_root)
    for release in (REGISTRY_PRIMARY, REGISTRY_FALLBACK):
        launcher = _installed_launcher(settings, release)
        java = next((j for j in javas if j.major >= release.min_java), None)
        if launcher is not None and java is not None:
            return RegistryInstall(release, launcher, java)
    seen = ", ".join(f"{j.path} ({j.major})" for j in javas) or "none"
    if _installed_launcher(settings, REGISTRY_PRIMARY) is not None:
        raise InstallError(f"Apicurio Registry {REGISTRY_PRIMARY.version} is installed but needs Java "
                           f"{REGISTRY_PRIMARY.min_java}+, and the javas found are: {seen}; install a JDK 21+ under "
                           f"{jvm_root} (or set JAVA_HOME to one), or run `chaos infra install` again to fetch "
                           f"{REGISTRY_FALLBACK.version}, which runs on Java 17")
    raise InstallError(f"the schema registry (Apicurio Registry) is not installed under {settings.install_dir}; "
                       "run `chaos infra install`, or attach your own with --schema-registry URL")


def _install_registry(settings: Settings, report: Report, jvm_root: Path = JVM_ROOT) -> None:
    javas = find_javas(jvm_root)
    picked = pick_registry(javas)
    if picked is None:
        raise InstallError("the schema registry (Apicurio) needs Java 17 or newer and none was found; "
                           "apt-get install -y openjdk-17-jre-headless")
    release, java = picked
    if release is not REGISTRY_PRIMARY:
        report(f"schema registry: no Java {REGISTRY_PRIMARY.min_java}+ found (looked at JAVA_HOME, PATH and "
               f"{jvm_root}/*); using Apicurio Registry {release.version}, which runs on Java {java.major}. For "
               f"{REGISTRY_PRIMARY.version}, install a JDK {REGISTRY_PRIMARY.min_java}+ (e.g. Temurin) under {jvm_root}")
    home = _registry_home(settings, release)
    if _installed_launcher(settings, release) is not None:
        report(f"apicurio registry {release.version}: already installed in {home} (nothing to do); "
               f"runs on {java.path} (Java {java.major})")
        return
    if shutil.which("mvn") is None:
        raise InstallError("Maven (mvn) is needed to fetch Apicurio Registry from Maven Central: apt-get install -y maven")
    shutil.rmtree(home, ignore_errors=True)
    download = home / "download"
    download.mkdir(parents=True)
    report(f"apicurio registry {release.version}: fetching {release.artifact} from Maven Central (about 160 MB) ...")
    # -C: a download whose checksum does not match Maven Central's .sha1 fails instead of only warning.
    _run_streaming(
        ["mvn", "-B", "-C", "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
         f"-Dartifact={release.artifact}", f"-DoutputDirectory={download}"],
        dict(os.environ), lambda line: None, home / "install.log", timeout_s=1800,
    )
    archives = list(download.glob("*.tar.gz"))
    if len(archives) != 1:
        raise InstallError(f"Maven finished but no Apicurio archive is in {download}; see {home / 'install.log'}")
    app = home / "app"
    app.mkdir()
    with tarfile.open(archives[0]) as tar:
        tar.extractall(app, filter="data")
    shutil.rmtree(download)
    # 3.x unpacks a Quarkus fast-jar (quarkus-run.jar beside lib/), 2.x one uber *-runner.jar.
    launchers = sorted(app.glob("quarkus-run.jar")) + sorted(app.glob("*/quarkus-run.jar")) + sorted(app.glob("**/*-runner.jar"))
    if not launchers:
        raise InstallError(f"the Apicurio {release.version} archive holds neither quarkus-run.jar nor a *-runner.jar "
                           f"(unpacked in {app}); delete {home} and run `chaos infra install` again")
    (home / _MARKER).write_text(str(launchers[0].relative_to(home)))
    report(f"apicurio registry {release.version}: installed in {home}; runs on {java.path} (Java {java.major})")


def _check_java(java: Path) -> None:
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"java not runnable ({exc}); Kafka 4 needs Java 17+: apt-get install -y openjdk-17-jre-headless") from exc
    first = (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else ""
    version = first.split('"')[1] if '"' in first else "0"
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    if major < 17:
        raise InstallError(f"Kafka 4 needs Java 17 or newer, found {first!r}; set JAVA_HOME to a JDK 17+")


def _run_streaming(argv: list[str], env: dict[str, str], on_line: Callable[[str], None], log: Path, timeout_s: float) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as fh:
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)  # noqa: S603
        except OSError as exc:
            raise InstallError(f"could not run {argv[0]}: {exc}") from exc
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            on_line(line.rstrip())
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise InstallError(f"{argv[0]} did not finish within {timeout_s:.0f}s; see {log}") from None
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-25:])
        raise InstallError(f"{' '.join(argv[:3])} ... failed with exit {code}; full log {log}\n{tail}")


def _install_kafka(inst: Installation, report: Report) -> None:
    home = inst.kafka_libs.parent
    if (home / _MARKER).exists():
        report(f"kafka {KAFKA_VERSION}: already installed in {home} (nothing to do)")
        return
    if shutil.which("mvn") is None:
        raise InstallError("Maven (mvn) is needed to fetch Kafka from Maven Central: apt-get install -y maven")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    pom = home / "pom.xml"
    pom.write_bytes(resources.files("harness.infra").joinpath("resources/kafka-pom.xml").read_bytes())
    report(f"kafka {KAFKA_VERSION}: resolving from Maven Central into {inst.kafka_libs} ...")
    count = 0

    def on_line(line: str) -> None:
        nonlocal count
        if "Downloaded from" in line:
            count += 1
            if count % 10 == 0:
                report(f"  kafka: {count} artifacts downloaded ...")

    _run_streaming(
        [
            "mvn", "-B", "-f", str(pom),
            f"-DoutputDirectory={inst.kafka_libs}", "-DincludeScope=runtime",
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
        ],
        dict(os.environ),
        on_line,
        home / "install.log",
        timeout_s=1800,
    )
    jars = list(inst.kafka_libs.glob("*.jar"))
    if not any(j.name.startswith(f"kafka_2.13-{KAFKA_VERSION}") for j in jars):
        raise InstallError(f"Maven finished but kafka_2.13-{KAFKA_VERSION}.jar is not in {inst.kafka_libs}")
    (home / _MARKER).write_text(KAFKA_VERSION)
    report(f"kafka {KAFKA_VERSION}: installed ({len(jars)} jars)")


def _install_debezium(inst: Installation, report: Report) -> None:
    home = inst.connect_plugins.parent
    if (home / _MARKER).exists():
        report(f"debezium {DEBEZIUM_VERSION}: already installed in {home} (nothing to do)")
        return
    if shutil.which("mvn") is None:
        raise InstallError("Maven (mvn) is needed to fetch Debezium from Maven Central: apt-get install -y maven")
    shutil.rmtree(home, ignore_errors=True)
    download = home / "download"
    download.mkdir(parents=True)
    report(f"debezium {DEBEZIUM_VERSION}: fetching {_DEBEZIUM_ARTIFACT} from Maven Central ...")
    _run_streaming(
        ["mvn", "-B", "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
         f"-Dartifact={_DEBEZIUM_ARTIFACT}", f"-DoutputDirectory={download}"],
        dict(os.environ), lambda line: None, home / "install.log", timeout_s=1200,
    )
    archives = list(download.glob("*.tar.gz"))
    if len(archives) != 1:
        raise InstallError(f"Maven finished but no Debezium plugin archive is in {download}; see {home / 'install.log'}")
    inst.connect_plugins.mkdir(parents=True)
    with tarfile.open(archives[0]) as tar:
        tar.extractall(inst.connect_plugins, filter="data")
    # The archive bundles kafka-clients and connect-api 4.3.0; Connect loads org.apache.kafka.* from its
    # own classpath (4.3.1) anyway, so the copies are removed rather than left to confuse a reader.
    for jar in inst.connect_plugins.glob("*/*.jar"):
        if jar.name.startswith(("kafka-clients-", "connect-api-")):
            jar.unlink()
    shutil.rmtree(download)
    (home / _MARKER).write_text(DEBEZIUM_VERSION)
    report(f"debezium {DEBEZIUM_VERSION}: installed in {inst.connect_plugins}")


def _install_toxiproxy(inst: Installation, report: Report) -> None:
    target = inst.toxiproxy_bin
    if target.exists():
        report(f"toxiproxy {TOXIPROXY_VERSION}: already installed at {target} (nothing to do)")
        return
    if shutil.which("go") is None:
        raise InstallError("Go is needed to build Toxiproxy from the Go module proxy: apt-get install -y golang")
    gobin = target.parent / "gobin"
    report(f"toxiproxy {TOXIPROXY_VERSION}: building with go install ...")
    env = {**os.environ, "GOBIN": str(gobin), "CGO_ENABLED": "0"}
    _run_streaming(
        ["go", "install", f"github.com/Shopify/toxiproxy/v2/cmd/server@v{TOXIPROXY_VERSION}"],
        env,
        lambda line: report(f"  go: {line}") if line.startswith("go: downloading github.com/Shopify") else None,
        target.parent / "install.log",
        timeout_s=1200,
    )
    # `go install` names the binary after its folder, `server`; give it a name that says what it is.
    (gobin / "server").rename(target)
    shutil.rmtree(gobin, ignore_errors=True)
    report(f"toxiproxy {TOXIPROXY_VERSION}: installed at {target}")
