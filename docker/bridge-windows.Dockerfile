# escape=`
#
# isapi-bridge for Windows: hosts real ISAPI extension DLLs. Also runs the
# gateway (C:\app\dist\gateway\cli.js) for an all-Windows pod or host.
#
# Built on a Windows Server 2022 host (process isolation needs the same
# build), from artefacts of the normal Windows build, which must run first:
#
#   npm ci
#   npm run build
#   npm run build:win      # build\samples-win\*.dll, build\native\isapi_shim.dll
#                          # (MSYS2 MinGW: set MINGW_CC=gcc MINGW=gcc)
#   docker build -f docker/bridge-windows.Dockerfile -t isapi-bridge-windows .
#
# Extensions: mount or COPY them to C:\isapi (the samples are in
# C:\isapi\samples). Transport: TCP with a shared secret by default (the CMD);
# `--listen pipe:isapi-bridge` serves the named pipe \\.\pipe\isapi-bridge,
# for a gateway in the same container or one on the host that bind-mounts
# the pipe (docker run -v \\.\pipe\isapi-bridge:\\.\pipe\isapi-bridge).

# KB-level tag of Server Core LTSC 2022: reproducible, and still the 20348
# build that Windows Server 2022 hosts can run with process isolation.
ARG WINDOWS_IMAGE=mcr.microsoft.com/windows/servercore:10.0.20348.3807

FROM ${WINDOWS_IMAGE} AS node
SHELL ["powershell", "-NoLogo", "-NoProfile", "-Command", "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';"]
# The official zip, checked against the SHA-256 published in SHASUMS256.txt.
ARG NODE_VERSION=20.20.2
ARG NODE_SHA256=dc3700fdd57a63eedb8fd7e3c7baaa32e6a740a1b904167ff4204bc68ed8bf77
RUN $url = ('https://nodejs.org/dist/v{0}/node-v{0}-win-x64.zip' -f $env:NODE_VERSION); `
    Invoke-WebRequest -Uri $url -OutFile C:\node.zip -UseBasicParsing; `
    $hash = (Get-FileHash C:\node.zip -Algorithm SHA256).Hash; `
    if ($hash -ne $env:NODE_SHA256) { throw ('node zip SHA-256 {0} does not match {1}' -f $hash, $env:NODE_SHA256) }; `
    Expand-Archive C:\node.zip -DestinationPath C:\; `
    Rename-Item ('C:\node-v{0}-win-x64' -f $env:NODE_VERSION) C:\nodejs; `
    Remove-Item C:\node.zip

FROM node AS deps
WORKDIR C:\app
COPY package.json package-lock.json ./
# npm picks @koromix/koffi-win32-x64 here: koffi's Windows build comes from
# the lockfile, prebuilt, with no compiler in the image.
# (PowerShell 5.1 does not stop on a failing native command: check the code.)
RUN C:\nodejs\npm.cmd ci --omit=dev --ignore-scripts --no-audit --no-fund; `
    if ($LASTEXITCODE -ne 0) { throw ('npm ci exited with {0}' -f $LASTEXITCODE) }; `
    C:\nodejs\npm.cmd cache clean --force

FROM ${WINDOWS_IMAGE} AS runtime
SHELL ["powershell", "-NoLogo", "-NoProfile", "-Command", "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue';"]
COPY --from=node C:\nodejs C:\nodejs
# Machine PATH, so ContainerUser and `kubectl exec` shells find node too.
RUN [Environment]::SetEnvironmentVariable('Path', $env:Path + ';C:\nodejs', [EnvironmentVariableTarget]::Machine); `
    New-Item -ItemType Directory -Force C:\isapi, C:\isapi-gateway\config, C:\isapi-gateway\secret | Out-Null
ENV NODE_ENV=production `
    ISAPI_HEALTHCHECK=tcp://127.0.0.1:9000
WORKDIR C:\app
COPY --from=deps C:\app\node_modules C:\app\node_modules
COPY package.json C:\app\
COPY dist\ C:\app\dist\
COPY build\native\isapi_shim.dll C:\app\build\native\
COPY build\samples-win\ C:\isapi\samples\
COPY docker\healthcheck.js C:\app\healthcheck.js
# The unprivileged built-in account; Kubernetes pods set it again through
# securityContext.windowsOptions.runAsUserName.
USER ContainerUser
EXPOSE 9000
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 `
  CMD ["C:\\nodejs\\node.exe", "C:\\app\\healthcheck.js"]
ENTRYPOINT ["C:\\nodejs\\node.exe", "C:\\app\\dist\\bridge\\cli.js"]
CMD ["--listen", "tcp://0.0.0.0:9000", "--config", "C:\\isapi-gateway\\config\\bridge.json", "--secret-file", "C:\\isapi-gateway\\secret\\shared-secret"]
