{{/*
The bridge container and the volumes it needs. Shared by the bridge
Deployment (placement separate) and the gateway pod (placement same-pod), so
both modes run the bridge with identical flags.
*/}}

{{- define "isapi-gateway.bridge.image" -}}
{{- $os := include "isapi-gateway.bridge.os" . -}}
{{- if eq .Values.bridge.mode "wine" -}}
{{- include "isapi-gateway.image" (dict "image" .Values.bridge.wine.image "windows" false "defaultRepository" "" "root" .) -}}
{{- else if eq $os "windows" -}}
{{- include "isapi-gateway.image" (dict "image" .Values.bridge.image "windows" true "defaultRepository" "isapi-gateway/isapi-bridge-windows" "root" .) -}}
{{- else -}}
{{- include "isapi-gateway.image" (dict "image" .Values.bridge.image "windows" false "defaultRepository" "isapi-gateway/isapi-bridge" "root" .) -}}
{{- end -}}
{{- end -}}

{{/*
Wine mode. Wine writes to its prefix (registry, user profile) and refuses a
prefix directory it does not own ("... is not owned by you"). The image builds
the prefix at build time (docker/bridge-wine.Dockerfile, WINEPREFIX), so with
a read-only root filesystem an emptyDir mounted over it would hide it and, its
root belonging to root, would be refused anyway. Instead the "wine-prefix" init
container copies the built prefix into a subdirectory of an emptyDir, as the
container user, and the bridge runs with WINEPREFIX pointing there. With
readOnlyRootFilesystem false the image's own prefix is used and nothing is
copied.
*/}}
{{- define "isapi-gateway.wine.copyPrefix" -}}
{{- if and (eq .Values.bridge.mode "wine") .Values.bridge.containerSecurityContext.readOnlyRootFilesystem -}}true{{- end -}}
{{- end -}}

{{- define "isapi-gateway.wine.stateDir" -}}/opt/wine/writable{{- end -}}

{{- define "isapi-gateway.wine.prefix" -}}{{ include "isapi-gateway.wine.stateDir" . }}/prefix{{- end -}}

{{/* Wine mode has its own default resources: an idle Wine node.exe needs about 170 MB more. */}}
{{- define "isapi-gateway.bridge.resources" -}}
{{- $resources := ternary .Values.bridge.wine.resources .Values.bridge.resources (eq .Values.bridge.mode "wine") -}}
{{- with $resources -}}
resources:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* Init containers the bridge needs, for whichever pod hosts it. */}}
{{- define "isapi-gateway.bridge.initContainers" -}}
{{- if include "isapi-gateway.wine.copyPrefix" . -}}
- name: wine-prefix
  image: {{ include "isapi-gateway.bridge.image" . | quote }}
  imagePullPolicy: {{ .Values.bridge.wine.image.pullPolicy }}
  # Copies the prefix built into the image to the writable volume; rm first so
  # a re-run (pod sandbox restart) starts from the image's prefix again.
  command:
    - /bin/sh
    - -ec
    - rm -rf "$WINEPREFIX" && cp -a "$IMAGE_WINEPREFIX" "$WINEPREFIX"
  env:
    - name: IMAGE_WINEPREFIX
      value: {{ .Values.bridge.wine.imagePrefix | quote }}
    - name: WINEPREFIX
      value: {{ include "isapi-gateway.wine.prefix" . | quote }}
  {{- include "isapi-gateway.bridge.resources" . | nindent 2 }}
  {{- with include "isapi-gateway.containerSecurityContext" (dict "os" "linux" "component" .Values.bridge) }}
  {{- . | nindent 2 }}
  {{- end }}
  volumeMounts:
    - name: wine-prefix
      mountPath: {{ include "isapi-gateway.wine.stateDir" . | quote }}
{{- end -}}
{{- end -}}

{{- define "isapi-gateway.bridge.container" -}}
{{- $root := . -}}
{{- $os := include "isapi-gateway.bridge.os" . -}}
{{- $separate := include "isapi-gateway.bridge.separate" . -}}
{{- $tcp := include "isapi-gateway.bridge.usesTcp" . -}}
{{- $configDir := include "isapi-gateway.configDir" (dict "os" $os) -}}
{{- $args := list "--listen" (include "isapi-gateway.bridge.listen" .) "--workers" (toString (int .Values.bridge.workers)) -}}
{{- $args = concat $args (list "--config" (printf "%s%sbridge.json" $configDir (ternary "\\" "/" (eq $os "windows")))) -}}
{{- if $tcp -}}
{{- $args = concat $args (list "--secret-file" (include "isapi-gateway.secretFile" (dict "os" $os))) -}}
{{- end -}}
{{- $args = concat $args .Values.bridge.extraArgs -}}
{{- $image := .Values.bridge.image -}}
{{- if eq .Values.bridge.mode "wine" }}{{ $image = .Values.bridge.wine.image }}{{ end -}}
- name: bridge
  image: {{ include "isapi-gateway.bridge.image" . | quote }}
  imagePullPolicy: {{ $image.pullPolicy }}
  args:
    {{- toYaml $args | nindent 4 }}
  {{- $env := list -}}
  {{- if eq .Values.bridge.mode "wine" -}}
  {{- /* The writable copy of the image's prefix (isapi-gateway.wine.copyPrefix); /tmp holds wineserver's socket and the launcher's files. */ -}}
  {{- if include "isapi-gateway.wine.copyPrefix" . -}}
  {{- $env = append $env (dict "name" "WINEPREFIX" "value" (include "isapi-gateway.wine.prefix" .)) -}}
  {{- end -}}
  {{- $env = append $env (dict "name" "HOME" "value" "/tmp") -}}
  {{- $env = append $env (dict "name" "WINEDEBUG" "value" .Values.bridge.wine.debug) -}}
  {{- end -}}
  {{- $env = concat $env .Values.bridge.extraEnv -}}
  {{- with $env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $separate }}
  ports:
    - name: transport
      containerPort: {{ .Values.bridge.transport.port }}
      protocol: TCP
  {{- /* Same-pod bridges listen on loopback or a socket, which kubelet probes cannot reach; the gateway's /readyz covers them. */ -}}
  {{- $handler := dict "tcpSocket" (dict "port" "transport") -}}
  {{- if .Values.bridge.startupProbe.enabled }}
  startupProbe:
    {{- include "isapi-gateway.probe" (dict "probe" .Values.bridge.startupProbe "handler" $handler) | nindent 4 }}
  {{- end }}
  {{- if .Values.bridge.livenessProbe.enabled }}
  livenessProbe:
    {{- include "isapi-gateway.probe" (dict "probe" .Values.bridge.livenessProbe "handler" $handler) | nindent 4 }}
  {{- end }}
  {{- if .Values.bridge.readinessProbe.enabled }}
  readinessProbe:
    {{- include "isapi-gateway.probe" (dict "probe" .Values.bridge.readinessProbe "handler" $handler) | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- with include "isapi-gateway.bridge.resources" . }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- with include "isapi-gateway.containerSecurityContext" (dict "os" $os "component" .Values.bridge) }}
  {{- . | nindent 2 }}
  {{- end }}
  volumeMounts:
    - name: config
      mountPath: {{ $configDir | quote }}
      readOnly: true
    {{- if $tcp }}
    - name: transport-secret
      mountPath: {{ include "isapi-gateway.secretDir" (dict "os" $os) | quote }}
      readOnly: true
    {{- end }}
    {{- if .Values.bridge.extensions.volume }}
    - name: extensions
      mountPath: {{ include "isapi-gateway.extensionsDir" (dict "os" $os "root" $root) | quote }}
      readOnly: {{ .Values.bridge.extensions.readOnly }}
    {{- end }}
    {{- if eq $os "linux" }}
    - name: bridge-tmp
      mountPath: /tmp
    {{- end }}
    {{- if include "isapi-gateway.wine.copyPrefix" . }}
    - name: wine-prefix
      mountPath: {{ include "isapi-gateway.wine.stateDir" . | quote }}
    {{- end }}
    {{- if include "isapi-gateway.bridge.unixSocket" . }}
    - name: bridge-socket
      mountPath: {{ include "isapi-gateway.socketDir" . }}
    {{- end }}
    {{- with .Values.bridge.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* Pod volumes the bridge container mounts, except the transport secret (shared with the gateway). */}}
{{- define "isapi-gateway.bridge.volumes" -}}
{{- if .Values.bridge.extensions.volume }}
- name: extensions
  {{- toYaml .Values.bridge.extensions.volume | nindent 2 }}
{{- end }}
{{- if eq (include "isapi-gateway.bridge.os" .) "linux" }}
- name: bridge-tmp
  emptyDir: {}
{{- end }}
{{- if include "isapi-gateway.wine.copyPrefix" . }}
- name: wine-prefix
  emptyDir:
    {{- with .Values.bridge.wine.prefixSizeLimit }}
    sizeLimit: {{ . | quote }}
    {{- else }} {}
    {{- end }}
{{- end }}
{{- with .Values.bridge.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "isapi-gateway.secretVolume" -}}
- name: transport-secret
  secret:
    secretName: {{ include "isapi-gateway.secretName" . }}
    items:
      - key: {{ include "isapi-gateway.secretKey" . }}
        path: shared-secret
    defaultMode: 0440
{{- end -}}
