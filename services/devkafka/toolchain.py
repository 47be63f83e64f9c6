"""Java and Maven: found, checked, and used once to fetch the pinned Kafka jars into the cache."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from herstelbus.devkafka.errors import DevKafkaError

MIN_JAVA = 17  # Kafka 4.x brokers need Java 17 or newer.
_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def java_executable() -> str:
    java = shutil.which("java")
    if not java:
        raise DevKafkaError(
            f"Java not found on PATH: the Kafka broker needs Java {MIN_JAVA}+ "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = _JAVA_VERSION.search(out.stderr + out.stdout)
    major = int(match.group(1)) if match else 0
    major = int(match.group(2)) if major == 1 and match and match.group(2) else major  # "1.8" style
    if major < MIN_JAVA:
        raise DevKafkaError(
            f"Java {major or '?'} found at {java}; Kafka needs Java {MIN_JAVA}+ "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
        )
    return java


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def ensure_jars(pom: Path, cache_dir: Path, version: str) -> Path:
    """The folder holding every runtime jar of the pinned broker; fetched with Maven on first use.

    A marker with the pom's digest makes a half-finished or outdated fetch count as absent.
    """
    libs = (cache_dir / f"kafka-{version}" / "libs").resolve()
    marker = libs.parent / ".complete"
    digest = _pom_digest(pom)
    if marker.is_file() and marker.read_text().strip() == digest and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise DevKafkaError(
            "Maven not found on PATH: it fetches the pinned Kafka jars from Maven Central once "
            "(Debian/Ubuntu: apt-get install maven)"
        )
    staging = libs.parent / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={staging}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise DevKafkaError(f"Maven could not fetch Kafka {version} (exit {result.returncode}):\n{tail}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    marker.write_text(digest + "\n")
    return libs
