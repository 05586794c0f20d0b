# syntax=docker/dockerfile:1.7
#
# isapi-gateway, the HTTP front door, for Linux. It talks to bridges that run
# elsewhere (another container, a Windows pod, a Windows VM), so this image
# carries no C toolchain output at all. For a single container that hosts .so
# extensions too, use bridge-linux.Dockerfile, which ships both programs.
#
#   docker buildx build -f docker/gateway.Dockerfile -t isapi-gateway .

# One pinned Node for all stages; bump together with .github/workflows/ci.yml.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: tsc needs none, and some dev tools would try to compile.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY gateway/ gateway/
COPY bridge/ bridge/
COPY metrics/ metrics/
RUN npx tsc -p tsconfig.json

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# koffi loads its prebuilt binary from its @koromix/* platform package, so the
# production tree needs no install script either.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
# tini as PID 1 passes SIGTERM on to node (which drains and exits 0) and reaps
# zombies; node as PID 1 would ignore signals it has no handler for.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY docker/healthcheck.js /usr/local/lib/isapi-gateway/healthcheck.js
# /run/isapi-gateway is where a bridge socket appears when a volume is shared
# with a bridge container; owning it lets a fresh named volume inherit uid 1000.
RUN mkdir -p /etc/isapi-gateway/config /run/isapi-gateway \
 && chown 1000:1000 /run/isapi-gateway
# Numeric, so Kubernetes can verify runAsNonRoot without /etc/passwd.
USER 1000:1000
EXPOSE 8080 9100
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/usr/local/lib/isapi-gateway/healthcheck.js"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/gateway/cli.js"]
CMD ["--config", "/etc/isapi-gateway/config/gateway.yaml"]
