{{- define "convoy.fullname" -}}{{ .Release.Name }}-convoy{{- end -}}
{{- define "convoy.etcdEndpoints" -}}
{{- if .Values.etcd.endpoints -}}{{ join "," .Values.etcd.endpoints }}{{- else -}}https://{{ include "convoy.fullname" . }}-etcd:2379{{- end -}}
{{- end -}}
{{- define "convoy.natsUrl" -}}
{{- if .Values.nats.url -}}{{ .Values.nats.url }}{{- else -}}none{{- end -}}
{{- end -}}
{{- define "convoy.labels" -}}
app.kubernetes.io/name: convoy
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
