# syntax=docker/dockerfile:1.7
#
# isapi-bridge for Linux: hosts ISAPI extensions rebuilt as .so files. The
# sample extensions are included under /opt/isapi/samples; mount or COPY your
# own under /opt/isapi. The image also contains the gateway (dist/gateway),
# so `--entrypoint` can run both in one container in local mode.
#
#   docker buildx build -f docker/bridge-linux.Dockerfile -t isapi-bridge .

ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
# The C compiler exists only in this stage; the runtime image has none.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY gateway/ gateway/
COPY bridge/ bridge/
COPY metrics/ metrics/
COPY samples/ samples/
# The same build as on a developer machine: tsc, the samples, the shim and the
# gateway's spool addon (against the headers this Node image ships).
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    ISAPI_HEALTHCHECK=tcp://127.0.0.1:9000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The bridge finds its shim, and the gateway its spool addon, at <app>/build/native
# (bridge/native-path.ts).
COPY --from=build /src/build/native ./build/native
COPY --from=build /src/build/samples /opt/isapi/samples
COPY package.json ./
COPY docker/healthcheck.js /usr/local/lib/isapi-gateway/healthcheck.js
RUN mkdir -p /etc/isapi-gateway/config /etc/isapi-gateway/secret /run/isapi-gateway \
 && chown 1000:1000 /run/isapi-gateway
USER 1000:1000
EXPOSE 9000
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/usr/local/lib/isapi-gateway/healthcheck.js"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/bridge/cli.js"]
# TCP needs the shared secret: mount it at /etc/isapi-gateway/secret/shared-secret.
CMD ["--listen", "tcp://0.0.0.0:9000", \
     "--config", "/etc/isapi-gateway/config/bridge.json", \
     "--secret-file", "/etc/isapi-gateway/secret/shared-secret"]
