{{/*
Names, labels and the namespace lists shared by every template.
Kubernetes names are DNS labels, so every generated name is cut to 63 characters.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "clickagg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every resource name: fullnameOverride, or release-chart (no repetition). */}}
{{- define "clickagg.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A name for one component, e.g. "clickagg.componentName" (list . "operator"); the prefix
is cut, never the component, so names of different components never collide. */}}
{{- define "clickagg.componentName" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $prefix := include "clickagg.fullname" $root | trunc (int (sub 62 (len $component))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix $component }}
{{- end }}

{{/* chart-version, as the helm.sh/chart label wants it. */}}
{{- define "clickagg.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "clickagg.labels" -}}
helm.sh/chart: {{ include "clickagg.chart" . }}
{{ include "clickagg.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: clickagg
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the release's pods; they never change across upgrades. */}}
{{- define "clickagg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clickagg.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Operator labels and selector labels. */}}
{{- define "clickagg.operator.labels" -}}
{{ include "clickagg.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "clickagg.operator.selectorLabels" -}}
{{ include "clickagg.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* KPI service labels and selector labels. */}}
{{- define "clickagg.service.labels" -}}
{{ include "clickagg.labels" . }}
app.kubernetes.io/component: service
{{- end }}

{{- define "clickagg.service.selectorLabels" -}}
{{ include "clickagg.selectorLabels" . }}
app.kubernetes.io/component: service
{{- end }}

{{/* Spark driver RBAC labels. */}}
{{- define "clickagg.spark.labels" -}}
{{ include "clickagg.labels" . }}
app.kubernetes.io/component: spark
{{- end }}

{{/* The operator's ServiceAccount; an existing one must be named when none is created. */}}
{{- define "clickagg.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "clickagg.componentName" (list . "operator")) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Spark driver ServiceAccount; an existing one must be named when none is created. */}}
{{- define "clickagg.spark.serviceAccountName" -}}
{{- if .Values.sparkJobs.serviceAccount.create }}
{{- default (include "clickagg.componentName" (list . "spark")) .Values.sparkJobs.serviceAccount.name }}
{{- else }}
{{- required "sparkJobs.serviceAccount.name is required when sparkJobs.serviceAccount.create is false" .Values.sparkJobs.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image reference; the tag defaults to the chart's appVersion. */}}
{{- define "clickagg.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* true when the operator watches every namespace (and so needs a ClusterRole). */}}
{{- define "clickagg.operator.clusterWide" -}}
{{- if empty .Values.operator.namespaces }}true{{ end }}
{{- end }}

{{/* Namespaces where Spark drivers run, as a JSON list (see values.yaml sparkJobs.namespaces). */}}
{{- define "clickagg.spark.namespaces" -}}
{{- $namespaces := .Values.sparkJobs.namespaces | default .Values.operator.namespaces | default (list .Release.Namespace) }}
{{- toJson (uniq $namespaces) }}
{{- end }}

{{/*
What the operator does in each watched namespace: reconcile Aggregations (and their status
and finalizers), own the Spark Operator's applications, report Events, read the Solr
credentials an Aggregation points at (get only: no list, so it cannot enumerate secrets),
and look up a referenced SolrCloud when its Solr does not answer.
*/}}
{{- define "clickagg.operator.rules" -}}
- apiGroups: ["clickagg.io"]
  resources: ["aggregations"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["clickagg.io"]
  resources: ["aggregations/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["clickagg.io"]
  resources: ["aggregations/finalizers"]
  verbs: ["update"]
- apiGroups: ["sparkoperator.k8s.io"]
  resources: ["sparkapplications", "scheduledsparkapplications"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["configmaps", "secrets"]
  verbs: ["get"]
- apiGroups: ["solr.apache.org"]
  resources: ["solrclouds"]
  verbs: ["get"]
{{- end }}

{{/* The webhook's Service, and the names the API server may reach it by (its certificate's SANs). */}}
{{- define "clickagg.webhook.serviceName" -}}
{{- include "clickagg.componentName" (list . "webhook") }}
{{- end }}

{{- define "clickagg.webhook.hosts" -}}
{{- $service := include "clickagg.webhook.serviceName" . }}
{{- $namespace := .Release.Namespace }}
{{- toJson (list $service (printf "%s.%s" $service $namespace) (printf "%s.%s.svc" $service $namespace) (printf "%s.%s.svc.cluster.local" $service $namespace)) }}
{{- end }}

{{/* The Secret holding the webhook's serving certificate (issued by the operator or by cert-manager). */}}
{{- define "clickagg.webhook.secretName" -}}
{{- include "clickagg.componentName" (list . "webhook-tls") }}
{{- end }}

{{/* The ValidatingWebhookConfiguration (cluster-scoped, so named after the release). */}}
{{- define "clickagg.webhook.configurationName" -}}
{{- include "clickagg.componentName" (list . "aggregations") }}
{{- end }}

{{/* true when the operator issues the webhook's certificate and patches the caBundle itself. */}}
{{- define "clickagg.webhook.operatorIssued" -}}
{{- if and .Values.webhook.enabled (eq .Values.webhook.certificates "operator") }}true{{ end }}
{{- end }}
