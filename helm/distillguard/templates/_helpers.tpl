{{/* Names, labels and the pieces several templates share. */}}

{{- define "distillguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "distillguard.fullname" -}}
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

{{- define "distillguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "distillguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "distillguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "distillguard.labels" -}}
helm.sh/chart: {{ include "distillguard.chart" . }}
app.kubernetes.io/name: {{ include "distillguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: distillguard
{{- end -}}

{{- define "distillguard.redis.fullname" -}}
{{- printf "%s-redis" (include "distillguard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "distillguard.redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "distillguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis
{{- end -}}

{{- define "distillguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "distillguard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "distillguard.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Where the policy ConfigMap and the keys Secret are mounted. */}}
{{- define "distillguard.policyDir" -}}/etc/distillguard/policy{{- end -}}
{{- define "distillguard.keysDir" -}}/etc/distillguard/keys{{- end -}}

{{/*
The environment variables that secrets.env wires: a list of {name, secretName, key, optional}.
An entry is wired when it names a Secret or secrets.existingSecret is set. Variables the chart sets
itself (the Redis URL) are left out.
*/}}
{{- define "distillguard.secretEnv" -}}
{{- $wired := list -}}
{{- range $name, $ref := .Values.secrets.env -}}
{{- $secretName := default $.Values.secrets.existingSecret $ref.secretName -}}
{{- if and $secretName (not (has $name (list "DISTILLGUARD_REDIS_URL" "DISTILLGUARD_REDIS_PASSWORD"))) -}}
{{- $optional := true -}}
{{- if hasKey $ref "optional" -}}{{- $optional = $ref.optional -}}{{- end -}}
{{- $wired = append $wired (dict "name" $name "secretName" $secretName "key" $ref.key "optional" $optional) -}}
{{- end -}}
{{- end -}}
{{- toJson $wired -}}
{{- end -}}

{{- define "distillguard.adminTokenWired" -}}
{{- range (include "distillguard.secretEnv" . | fromJsonArray) -}}
{{- if eq .name "DISTILLGUARD_ADMIN_TOKEN" -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Redis URL for the bundled server, with $(DISTILLGUARD_REDIS_PASSWORD) when auth is on. */}}
{{- define "distillguard.redis.bundledURL" -}}
{{- $host := printf "%s.%s.svc" (include "distillguard.redis.fullname" .) .Release.Namespace -}}
{{- if .Values.redis.bundled.auth.existingSecret -}}
{{- printf "redis://:$(DISTILLGUARD_REDIS_PASSWORD)@%s:6379/0" $host -}}
{{- else -}}
{{- printf "redis://%s:6379/0" $host -}}
{{- end -}}
{{- end -}}

{{/* The policy's state.mode for redis.mode bundled or external (the bundled server is one node). */}}
{{- define "distillguard.redis.topology" -}}
{{- if eq .Values.redis.mode "external" -}}
{{- .Values.redis.external.mode | default "standalone" -}}
{{- else -}}
standalone
{{- end -}}
{{- end -}}

{{/*
Contradictions in redis.* that values.schema.json cannot express, each failing the render with the
keys to fix (the gateway would refuse the rendered state section, or silently use another topology).
*/}}
{{- define "distillguard.redis.check" -}}
{{- $r := .Values.redis -}}
{{- $ext := $r.external -}}
{{- $topology := $ext.mode | default "standalone" -}}
{{- $s := $ext.sentinel | default (dict) -}}
{{- $sentinelSet := or $s.addresses $s.serviceName (and $s.auth $s.auth.existingSecret) -}}
{{- if and (ne $r.mode "external") (ne $topology "standalone") -}}
{{- fail (printf "redis.external.mode %s needs redis.mode external (redis.mode is %s)" $topology $r.mode) -}}
{{- end -}}
{{- if eq $r.mode "external" -}}
{{- if eq $topology "sentinel" -}}
{{- if or $ext.url $ext.existingSecret -}}
{{- fail "redis.external.url and redis.external.existingSecret are for modes standalone and cluster; sentinel mode takes redis.external.sentinel.addresses and serviceName" -}}
{{- end -}}
{{- if not (and $s.addresses $s.serviceName) -}}
{{- fail "redis.external.mode sentinel needs redis.external.sentinel.addresses (host:port of each sentinel) and redis.external.sentinel.serviceName" -}}
{{- end -}}
{{- else -}}
{{- if not (or $ext.url $ext.existingSecret) -}}
{{- fail "redis.mode external needs redis.external.url or redis.external.existingSecret" -}}
{{- end -}}
{{- if $sentinelSet -}}
{{- fail (printf "redis.external.sentinel is for redis.external.mode sentinel (the mode is %s)" $topology) -}}
{{- end -}}
{{- if and (eq $topology "cluster") (regexMatch "^rediss?://[^/?#]*/0*[1-9][0-9]*" $ext.url) -}}
{{- fail "redis.external.url: Redis Cluster has only database 0" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The policy YAML the gateway reads. With policy.overlay the chart sets the deployment's parts of it
(see values.yaml); the result is re-serialised, so comments in the source do not survive.
*/}}
{{- define "distillguard.policy" -}}
{{- $source := .Values.policy.yaml | default (.Files.Get "files/policy.yaml") -}}
{{- if not (trim $source) -}}
{{- fail "the policy is empty: set policy.yaml (--set-file policy.yaml=./policy.yaml) or keep files/policy.yaml" -}}
{{- end -}}
{{- if not .Values.policy.overlay -}}
{{- $source -}}
{{- else -}}
{{- $policy := fromYaml $source -}}
{{- if hasKey $policy "Error" -}}
{{- fail (printf "policy.yaml is not valid YAML: %v" (get $policy "Error")) -}}
{{- end -}}
{{- $_ := set $policy "listen" (dict "host" "0.0.0.0" "port" (int .Values.gateway.port)) -}}
{{- $_ := set $policy "operator" (dict "host" "0.0.0.0" "port" (int .Values.gateway.operatorPort)) -}}
{{- if ne .Values.redis.mode "none" -}}
{{- /* Keep the policy's key_prefix and timeout; every topology key comes from the values. */ -}}
{{- $state := omit (get $policy "state" | default (dict)) "url" "url_env" "mode" "sentinels" "service_name" "db" "password_env" -}}
{{- $topology := include "distillguard.redis.topology" . -}}
{{- $_ := set $state "backend" "redis" -}}
{{- $_ := set $state "mode" $topology -}}
{{- if eq $topology "sentinel" -}}
{{- $sentinel := .Values.redis.external.sentinel -}}
{{- $_ := set $state "sentinels" $sentinel.addresses -}}
{{- $_ := set $state "service_name" $sentinel.serviceName -}}
{{- $_ := set $state "db" (int $sentinel.db) -}}
{{- if $sentinel.auth.existingSecret -}}
{{- $_ := set $state "password_env" "DISTILLGUARD_REDIS_PASSWORD" -}}
{{- end -}}
{{- else -}}
{{- $_ := set $state "url_env" "DISTILLGUARD_REDIS_URL" -}}
{{- end -}}
{{- $_ := set $policy "state" $state -}}
{{- end -}}
{{- if .Values.gateway.upstreamURL -}}
{{- range (get $policy "upstreams" | default (list)) -}}
{{- $_ := set . "url" $.Values.gateway.upstreamURL -}}
{{- end -}}
{{- end -}}
{{- if include "distillguard.adminTokenWired" . -}}
{{- $admin := get $policy "admin" | default (dict) -}}
{{- if not (get $admin "token_env") -}}
{{- $_ := set $admin "token_env" "DISTILLGUARD_ADMIN_TOKEN" -}}
{{- $_ := set $policy "admin" $admin -}}
{{- end -}}
{{- end -}}
{{- toYaml $policy -}}
{{- end -}}
{{- end -}}
