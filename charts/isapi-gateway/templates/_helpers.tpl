{{/*
Naming, labels and the derived facts every template agrees on (which OS each
pod runs, how the gateway reaches the bridge). Keeping them here means a mode
switch in values changes one place, not six templates.
*/}}

{{- define "isapi-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "isapi-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "-bridge" must survive the 63-character limit, so trim the base first. */}}
{{- define "isapi-gateway.bridge.fullname" -}}
{{- printf "%s-bridge" (include "isapi-gateway.fullname" . | trunc 56 | trimSuffix "-") -}}
{{- end -}}

{{- define "isapi-gateway.metrics.fullname" -}}
{{- printf "%s-metrics" (include "isapi-gateway.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{- define "isapi-gateway.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "isapi-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "isapi-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "isapi-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "isapi-gateway.labels" -}}
helm.sh/chart: {{ include "isapi-gateway.chart" . }}
{{ include "isapi-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: isapi-gateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "isapi-gateway.gateway.selectorLabels" -}}
{{ include "isapi-gateway.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "isapi-gateway.bridge.selectorLabels" -}}
{{ include "isapi-gateway.selectorLabels" . }}
app.kubernetes.io/component: bridge
{{- end -}}

{{- define "isapi-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "isapi-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Image reference. Call with (dict "image" <image values> "windows" <bool> "root" $).
An empty tag means the chart's appVersion; Windows images get the OS suffix
(one tag per Windows build, since process isolation needs a matching host).
*/}}
{{- define "isapi-gateway.image" -}}
{{- $registry := .root.Values.global.imageRegistry | default .image.registry -}}
{{- $repository := .image.repository | default .defaultRepository -}}
{{- $ref := ternary $repository (printf "%s/%s" $registry $repository) (empty $registry) -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else if .image.tag -}}
{{- printf "%s:%s" $ref (toString .image.tag) -}}
{{- else if .windows -}}
{{- printf "%s:%s%s" $ref .root.Chart.AppVersion .root.Values.windows.imageTagSuffix -}}
{{- else -}}
{{- printf "%s:%s" $ref .root.Chart.AppVersion -}}
{{- end -}}
{{- end -}}

{{- define "isapi-gateway.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets -}}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Node OS of the bridge pods: Wine bridges are Linux pods. */}}
{{- define "isapi-gateway.bridge.os" -}}
{{- if eq .Values.bridge.mode "wine" -}}linux{{- else -}}{{ .Values.bridge.os }}{{- end -}}
{{- end -}}

{{- define "isapi-gateway.bridge.samePod" -}}
{{- if and .Values.bridge.enabled (eq .Values.bridge.placement "same-pod") -}}true{{- end -}}
{{- end -}}

{{- define "isapi-gateway.bridge.separate" -}}
{{- if and .Values.bridge.enabled (eq .Values.bridge.placement "separate") -}}true{{- end -}}
{{- end -}}

{{/*
Only a native Linux same-pod pair can use a unix socket on a shared emptyDir.
Node cannot use AF_UNIX on Windows, nor Windows node.exe under Wine (the Wine
launcher refuses unix: listen addresses), and named pipes are not shared
between the containers of a Windows pod, so everything else goes over TCP.
*/}}
{{- define "isapi-gateway.bridge.unixSocket" -}}
{{- if and (include "isapi-gateway.bridge.samePod" .) (eq (include "isapi-gateway.bridge.os" .) "linux") (eq .Values.bridge.mode "native") -}}true{{- end -}}
{{- end -}}

{{- define "isapi-gateway.bridge.usesTcp" -}}
{{- if not (include "isapi-gateway.bridge.unixSocket" .) -}}true{{- end -}}
{{- end -}}

{{- define "isapi-gateway.socketDir" -}}/run/isapi-gateway{{- end -}}

{{- define "isapi-gateway.bridge.listen" -}}
{{- if include "isapi-gateway.bridge.unixSocket" . -}}
unix:{{ include "isapi-gateway.socketDir" . }}/bridge.sock
{{- else if include "isapi-gateway.bridge.samePod" . -}}
tcp://127.0.0.1:{{ .Values.bridge.transport.port }}
{{- else -}}
tcp://0.0.0.0:{{ .Values.bridge.transport.port }}
{{- end -}}
{{- end -}}

{{- define "isapi-gateway.bridge.address" -}}
{{- if not .Values.bridge.enabled -}}
{{ .Values.bridge.external.address }}
{{- else if include "isapi-gateway.bridge.samePod" . -}}
{{ include "isapi-gateway.bridge.listen" . }}
{{- else -}}
tcp://{{ include "isapi-gateway.bridge.fullname" . }}.{{ include "isapi-gateway.namespace" . }}.svc.{{ .Values.clusterDomain }}:{{ .Values.bridge.transport.port }}
{{- end -}}
{{- end -}}

{{- define "isapi-gateway.secretName" -}}
{{- default (printf "%s-transport" (include "isapi-gateway.fullname" . | trunc 53 | trimSuffix "-")) .Values.bridge.auth.existingSecret -}}
{{- end -}}

{{- define "isapi-gateway.secretKey" -}}
{{- if .Values.bridge.auth.existingSecret -}}{{ .Values.bridge.auth.existingSecretKey }}{{- else -}}shared-secret{{- end -}}
{{- end -}}

{{/* Directories inside containers, by OS. Call with (dict "os" "linux|windows"). */}}
{{- define "isapi-gateway.configDir" -}}
{{- if eq .os "windows" -}}C:\isapi-gateway\config{{- else -}}/etc/isapi-gateway/config{{- end -}}
{{- end -}}

{{- define "isapi-gateway.secretDir" -}}
{{- if eq .os "windows" -}}C:\isapi-gateway\secret{{- else -}}/etc/isapi-gateway/secret{{- end -}}
{{- end -}}

{{- define "isapi-gateway.secretFile" -}}
{{- $dir := include "isapi-gateway.secretDir" . -}}
{{- if eq .os "windows" -}}{{ $dir }}\shared-secret{{- else -}}{{ $dir }}/shared-secret{{- end -}}
{{- end -}}

{{- define "isapi-gateway.extensionsDir" -}}
{{- if .root.Values.bridge.extensions.mountPath -}}
{{ .root.Values.bridge.extensions.mountPath }}
{{- else if eq .os "windows" -}}
C:\isapi
{{- else -}}
/opt/isapi
{{- end -}}
{{- end -}}

{{/*
Pod-level OS wiring shared by every pod: spec.os (so the API server refuses
fields the OS cannot honour), the kubernetes.io/os selector and, on Windows,
the build selector, tolerations and the unprivileged ContainerUser account.
Linux pods take the configured podSecurityContext instead.
Call with (dict "os" ... "component" <gateway or bridge values> "root" $).
*/}}
{{- define "isapi-gateway.podPlacement" -}}
{{- $root := .root -}}
os:
  name: {{ .os }}
{{- $nodeSelector := dict "kubernetes.io/os" .os -}}
{{- if and (eq .os "windows") $root.Values.windows.build -}}
{{- $_ := set $nodeSelector "node.kubernetes.io/windows-build" $root.Values.windows.build -}}
{{- end -}}
{{- if eq .os "windows" -}}
{{- $nodeSelector = merge $nodeSelector $root.Values.windows.nodeSelector -}}
{{- end -}}
{{- $nodeSelector = merge $nodeSelector .component.nodeSelector }}
nodeSelector:
  {{- toYaml $nodeSelector | nindent 2 }}
{{- $tolerations := .component.tolerations -}}
{{- if eq .os "windows" -}}
{{- $tolerations = concat $root.Values.windows.tolerations .component.tolerations -}}
{{- end -}}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- if eq .os "windows" }}
securityContext:
  windowsOptions:
    runAsUserName: {{ $root.Values.windows.runAsUserName | quote }}
{{- else }}
{{- with .component.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Container securityContext: Linux only; Windows takes the pod-level account. */}}
{{- define "isapi-gateway.containerSecurityContext" -}}
{{- if and (ne .os "windows") .component.containerSecurityContext -}}
securityContext:
  {{- toYaml .component.containerSecurityContext | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* A probe block from values. Call with (dict "probe" <values> "handler" <dict>). */}}
{{- define "isapi-gateway.probe" -}}
{{- toYaml (merge (omit .probe "enabled") .handler) -}}
{{- end -}}

{{/*
Combinations that cannot work are refused here, with the reason, rather than
left to fail at scheduling time on a cluster.
*/}}
{{- define "isapi-gateway.validateValues" -}}
{{- $bridgeOs := include "isapi-gateway.bridge.os" . -}}
{{- if and (eq .Values.bridge.mode "wine") (eq .Values.bridge.os "windows") -}}
{{- fail "bridge.mode=wine runs Windows DLLs under Wine on Linux nodes: set bridge.os=linux (a Windows bridge loads DLLs natively with bridge.mode=native)." -}}
{{- end -}}
{{- if and (eq .Values.bridge.mode "wine") (include "isapi-gateway.bridge.separate" .) .Values.bridge.livenessProbe.enabled -}}
{{- $p := .Values.bridge.startupProbe -}}
{{- $budget := ternary (add $p.initialDelaySeconds (mul $p.periodSeconds $p.failureThreshold)) .Values.bridge.livenessProbe.initialDelaySeconds $p.enabled -}}
{{- if lt (int $budget) 20 -}}
{{- fail (printf "bridge.mode=wine: Windows node.exe under Wine needs up to 20 s to start (wineserver, prefix), but liveness would apply after %d s. Give bridge.startupProbe at least 20 s (initialDelaySeconds + periodSeconds * failureThreshold), or disable bridge.livenessProbe." (int $budget)) -}}
{{- end -}}
{{- end -}}
{{- if and (include "isapi-gateway.bridge.samePod" .) (ne .Values.gateway.os $bridgeOs) -}}
{{- fail (printf "bridge.placement=same-pod puts the gateway and the bridge in one pod, but gateway.os=%s and the bridge runs on %s nodes: Kubernetes can never run Linux and Windows containers in the same pod. Use bridge.placement=separate (the gateway reaches the bridge over TCP with a shared secret), or run both on the same OS." .Values.gateway.os $bridgeOs) -}}
{{- end -}}
{{- if and (not .Values.bridge.enabled) (not .Values.bridge.external.address) -}}
{{- fail "bridge.enabled=false needs bridge.external.address (tcp://host:port of an isapi-bridge started elsewhere)." -}}
{{- end -}}
{{- if and (not .Values.bridge.enabled) .Values.bridge.external.address (not (hasPrefix "tcp://" .Values.bridge.external.address)) -}}
{{- fail (printf "bridge.external.address=%s: a bridge outside the pod is only reachable over tcp://host:port." .Values.bridge.external.address) -}}
{{- end -}}
{{- range $name := list "gateway" "bridge" -}}
{{- $pdb := (index $.Values $name).pdb -}}
{{- if and $pdb.enabled (ne (toString $pdb.minAvailable) "") (ne (toString $pdb.maxUnavailable) "") -}}
{{- fail (printf "%s.pdb: set minAvailable or maxUnavailable, not both (set the other to \"\")." $name) -}}
{{- end -}}
{{- if and $pdb.enabled (eq (toString $pdb.minAvailable) "") (eq (toString $pdb.maxUnavailable) "") -}}
{{- fail (printf "%s.pdb.enabled needs minAvailable or maxUnavailable." $name) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (lt (int .Values.gateway.autoscaling.maxReplicas) (int .Values.gateway.autoscaling.minReplicas)) -}}
{{- fail "gateway.autoscaling.maxReplicas must be >= gateway.autoscaling.minReplicas." -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (not .Values.gateway.autoscaling.targetCPUUtilizationPercentage) (not .Values.gateway.autoscaling.targetMemoryUtilizationPercentage) -}}
{{- fail "gateway.autoscaling.enabled needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage." -}}
{{- end -}}
{{- range .Values.apps -}}
{{- if and .bridge (ne .bridge "default") (not (hasKey $.Values.extraBridges .bridge)) -}}
{{- fail (printf "apps[%s].bridge=%s is neither \"default\" nor a key of extraBridges." .name .bridge) -}}
{{- end -}}
{{- end -}}
{{- end -}}
