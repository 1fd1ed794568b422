package deploy

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/obo-gateway/obo-gateway/internal/config"
)

// What the container image promises (Dockerfile): it runs
// `/gateway serve -config /etc/obo-gateway/gateway.yaml` as 65532:65532.
const (
	imageConfigPath = "/etc/obo-gateway/gateway.yaml"
	imageUID        = 65532

	gatewayDeployment  = "obo-gateway"
	gatewayContainer   = "gateway"
	credentialSecret   = "obo-gateway-credential"
	monitoringNS       = "monitoring"
	namespaceNameLabel = "kubernetes.io/metadata.name"
	// The namespace the test assumes the manifests are applied to: the
	// manifests set none, and "the same namespace" needs a name for
	// namespaceSelectors to be evaluated against.
	ownNS = "obo-gateway"
)

// fakeSecrets are the values the test gives the Secrets the manifests
// reference, by "secret/key". A reference to anything else fails the test.
var fakeSecrets = map[string]string{
	"obo-gateway-redis/password":        "not-a-real-password",
	"obo-gateway-redis/encryption-keys": "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
}

// variants are the kustomizations under test.
var variants = []struct {
	dir              string
	redis            bool // the shared cache is configured
	workloadIdentity bool // entra.credential: workload_identity, no certificate
}{
	{dir: "base"},
	{dir: "overlays/redis", redis: true},
	{dir: "overlays/workload-identity", workloadIdentity: true},
}

// rendered is the output of one kustomization, every object decoded into
// its API type, by name.
type rendered struct {
	dir             string
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	pdbs            map[string]*policyv1.PodDisruptionBudget
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	netpols         map[string]*networkingv1.NetworkPolicy
	serviceMonitors map[string]*monitoringv1.ServiceMonitor
}

// render builds the kustomization in dir in-process, as `kubectl kustomize`
// would, and decodes every object strictly.
func render(t *testing.T, dir string) *rendered {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	r := &rendered{
		dir:             dir,
		deployments:     map[string]*appsv1.Deployment{},
		services:        map[string]*corev1.Service{},
		configMaps:      map[string]*corev1.ConfigMap{},
		secrets:         map[string]*corev1.Secret{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		pdbs:            map[string]*policyv1.PodDisruptionBudget{},
		hpas:            map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		netpols:         map[string]*networkingv1.NetworkPolicy{},
		serviceMonitors: map[string]*monitoringv1.ServiceMonitor{},
	}
	if len(m.Resources()) == 0 {
		t.Fatalf("kustomize build %s: no objects", dir)
	}
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, res.CurId(), err)
		}
		gvk := res.GetGvk()
		id := fmt.Sprintf("%s %s", gvk.Kind, res.GetName())
		if res.GetNamespace() != "" {
			t.Errorf("%s: %s: namespace %q: the manifests set none (the operator's overlay or kubectl -n does)", dir, id, res.GetNamespace())
		}
		var err2 error
		switch gvk.ApiVersion() + " " + gvk.Kind {
		case "apps/v1 Deployment":
			err2 = add(r.deployments, y)
		case "v1 Service":
			err2 = add(r.services, y)
		case "v1 ConfigMap":
			err2 = add(r.configMaps, y)
		case "v1 Secret":
			err2 = add(r.secrets, y)
		case "v1 ServiceAccount":
			err2 = add(r.serviceAccounts, y)
		case "policy/v1 PodDisruptionBudget":
			err2 = add(r.pdbs, y)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			err2 = add(r.hpas, y)
		case "networking.k8s.io/v1 NetworkPolicy":
			err2 = add(r.netpols, y)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			err2 = add(r.serviceMonitors, y)
		default:
			err2 = fmt.Errorf("unknown kind %s %s: decode it in render (deploy/manifests_test.go) to have it checked", gvk.ApiVersion(), gvk.Kind)
		}
		if err2 != nil {
			t.Errorf("%s: %s: %v", dir, id, err2)
		}
	}
	return r
}

// named are the API types render decodes.
type named interface {
	GetName() string
}

// add decodes y strictly into a new T and files it under its name.
func add[T any, PT interface {
	*T
	named
}](into map[string]*T, y []byte) error {
	obj := PT(new(T))
	if err := decodeStrict(y, obj); err != nil {
		return err
	}
	if _, dup := into[obj.GetName()]; dup {
		return errors.New("rendered twice")
	}
	into[obj.GetName()] = (*T)(obj)
	return nil
}

// decodeStrict decodes a YAML object into an API type the way the API
// server does with strict field validation: JSON field names matched
// case-sensitively (sigs.k8s.io/json, not encoding/json), and an unknown or
// duplicate field is an error.
func decodeStrict(y []byte, into any) error {
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, into)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// TestDecodeStrictRejects shows that the decoder refuses what the API
// server's strict field validation refuses, so that TestManifests' decoding
// means something.
func TestDecodeStrictRejects(t *testing.T) {
	deployment := func() any { return &appsv1.Deployment{} }
	for _, tc := range []struct {
		name string
		into func() any
		yaml string
	}{
		{"unknown field", deployment, "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 2\n"},
		{"wrong case", deployment, "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      securitycontext: {runAsNonRoot: true}\n"},
		{"wrong type", deployment, "apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: two\n"},
		{"duplicate field", func() any { return &corev1.Service{} }, "apiVersion: v1\nkind: Service\nspec:\n  type: ClusterIP\n  type: NodePort\n"},
		{"unknown nested field", func() any { return &monitoringv1.ServiceMonitor{} }, "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nspec:\n  endpoints:\n    - port: metrics\n      intervall: 30s\n"},
	} {
		if err := decodeStrict([]byte(tc.yaml), tc.into()); err == nil {
			t.Errorf("%s: decoded without error", tc.name)
		}
	}
	if err := decodeStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replicas: 2\n"), deployment()); err != nil {
		t.Errorf("a valid object: %v", err)
	}
}

func TestManifests(t *testing.T) {
	for _, v := range variants {
		t.Run(v.dir, func(t *testing.T) {
			r := render(t, v.dir)
			gw := r.deployments[gatewayDeployment]
			if gw == nil {
				t.Fatalf("no Deployment %s", gatewayDeployment)
			}
			c := container(gw.Spec.Template.Spec, gatewayContainer)
			if c == nil {
				t.Fatalf("Deployment %s: no container %q", gatewayDeployment, gatewayContainer)
			}
			cfg, certPath := loadGatewayConfig(t, r, gw, c, v.redis, v.workloadIdentity)

			t.Run("security", func(t *testing.T) {
				if len(r.deployments) == 0 {
					t.Fatal("no Deployment")
				}
				for name, d := range r.deployments {
					checkDeployment(t, name, d, r)
				}
				checkUser(t, gatewayDeployment, gw.Spec.Template.Spec, c, imageUID)
			})
			t.Run("gateway", func(t *testing.T) { checkGateway(t, r, gw, c, cfg, v.workloadIdentity) })
			t.Run("services", func(t *testing.T) { checkServices(t, r) })
			t.Run("servicemonitor", func(t *testing.T) { checkServiceMonitor(t, r, gw, c, cfg) })
			t.Run("networkpolicy", func(t *testing.T) { checkNetworkPolicies(t, r, gw, c, cfg, v.redis) })
			t.Run("availability", func(t *testing.T) { checkAvailability(t, r, gw) })
			if v.redis {
				t.Run("redis", func(t *testing.T) { checkRedis(t, r, gw, c, cfg) })
			}
			if v.workloadIdentity {
				t.Run("workloadidentity", func(t *testing.T) { checkWorkloadIdentity(t, r, gw) })
			}
			t.Run("docs", func(t *testing.T) { checkDocs(t, r, certPath) })
		})
	}
}

// loadGatewayConfig loads the gateway.yaml of the ConfigMap the gateway
// mounts with the project's own loader, with the container's environment
// (Secrets from fakeSecrets) and a readable stand-in for the certificate;
// with workload identity, with what the webhook adds to it instead (see
// webhookEnv). The configuration must validate: it is what the pod would
// start with.
func loadGatewayConfig(t *testing.T, r *rendered, d *appsv1.Deployment, c *corev1.Container, redis, workloadIdentity bool) (cfg *config.Config, certPath string) {
	t.Helper()
	spec := d.Spec.Template.Spec
	data := configData(t, r, spec, c)

	env, environ := containerEnv(t, c)
	known := map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true}
	for _, v := range config.EnvVars() {
		known[v.Name] = true
	}
	for name := range env {
		if !known[name] && !strings.HasPrefix(name, "OBO_GATEWAY_ROUTE_") {
			t.Errorf("container %s: env %s is not a variable the gateway reads (config.EnvVars): misspelt?", c.Name, name)
		}
	}

	// The certificate path, from the file or the environment, must be in
	// the Secret volume; the test then points it at a readable stand-in.
	var file struct {
		Entra struct {
			Certificate struct {
				Path string `json:"path"`
			} `json:"certificate"`
		} `json:"entra"`
	}
	if err := yaml.Unmarshal([]byte(data), &file); err != nil {
		t.Fatalf("gateway.yaml: %v", err)
	}
	certPath = file.Entra.Certificate.Path
	if p, set := env["AZURE_CLIENT_CERTIFICATE_PATH"]; set {
		certPath = p // "" clears the file's
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfgFile, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if workloadIdentity {
		// No certificate at all; the webhook's variables, as it adds them
		// to the pod, with a token file to read.
		if certPath != "" {
			t.Errorf("entra.certificate.path is %q with workload identity: clear it (AZURE_CLIENT_CERTIFICATE_PATH=\"\")", certPath)
		}
		for k, v := range webhookEnv(t, r, d, c, dir) {
			env[k] = v
			environ = append(environ, k+"="+v)
		}
	} else {
		m := mountOf(spec, c, path.Dir(certPath))
		if m == nil || volume(spec, m.Name).Secret == nil || volume(spec, m.Name).Secret.SecretName != credentialSecret {
			t.Errorf("entra.certificate.path %q is not in the mounted Secret %s", certPath, credentialSecret)
		}
		certFile := filepath.Join(dir, "tls.pem")
		if err := os.WriteFile(certFile, []byte("a stand-in: Load checks that the file is readable\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env["AZURE_CLIENT_CERTIFICATE_PATH"] = certFile
	}
	// The map, as the gateway reads os.Environ: a variable set to "" is set.
	cfg, err := config.Load(cfgFile, env)
	if err != nil {
		t.Fatalf("%s: the gateway's configuration does not load:\n%v", r.dir, err)
	}
	if err := cfg.CheckEnviron(environ); err != nil {
		t.Errorf("%s: %v", r.dir, err)
	}
	if got := cfg.Cache.Redis != nil; got != redis {
		t.Errorf("%s: shared cache configured = %v, want %v", r.dir, got, redis)
	}
	return cfg, certPath
}

// configData is the gateway.yaml of the ConfigMap volume mounted where the
// image reads its configuration.
func configData(t *testing.T, r *rendered, spec corev1.PodSpec, c *corev1.Container) string {
	t.Helper()
	var data string
	for _, m := range c.VolumeMounts {
		v := volume(spec, m.Name)
		if v == nil || v.ConfigMap == nil {
			continue
		}
		key := strings.TrimPrefix(imageConfigPath, m.MountPath+"/")
		if key == imageConfigPath || strings.Contains(key, "/") || len(v.ConfigMap.Items) > 0 || m.SubPath != "" {
			continue
		}
		cm := r.configMaps[v.ConfigMap.Name]
		if cm == nil {
			t.Fatalf("volume %s: ConfigMap %q is not rendered", v.Name, v.ConfigMap.Name)
		}
		var ok bool
		if data, ok = cm.Data[key]; !ok {
			t.Fatalf("ConfigMap %s has no key %q, the file the image reads (%s)", cm.Name, key, imageConfigPath)
		}
	}
	if data == "" {
		t.Fatalf("no ConfigMap volume puts the configuration at %s, where the image reads it", imageConfigPath)
	}
	return data
}

// containerEnv resolves a container's environment: literal values, and
// Secret references from fakeSecrets.
func containerEnv(t *testing.T, c *corev1.Container) (map[string]string, []string) {
	t.Helper()
	if len(c.EnvFrom) > 0 {
		t.Errorf("container %s: envFrom is not resolved by this test: list the variables", c.Name)
	}
	env := map[string]string{}
	var environ []string
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			var ok bool
			if v, ok = fakeSecrets[ref.Name+"/"+ref.Key]; !ok {
				t.Errorf("container %s: env %s: Secret %s key %s: unknown to the test and to docs/kubernetes.md", c.Name, e.Name, ref.Name, ref.Key)
			}
			if ref.Optional != nil && *ref.Optional {
				t.Errorf("container %s: env %s: an optional Secret reference hides a missing Secret", c.Name, e.Name)
			}
		default:
			t.Errorf("container %s: env %s: only values and secretKeyRef are resolved by this test", c.Name, e.Name)
		}
		if _, dup := env[e.Name]; dup {
			t.Errorf("container %s: env %s set twice", c.Name, e.Name)
		}
		env[e.Name] = v
		environ = append(environ, e.Name+"="+v)
	}
	return env, environ
}

// checkDeployment checks the security properties every Deployment must have.
func checkDeployment(t *testing.T, name string, d *appsv1.Deployment, r *rendered) {
	t.Helper()
	spec := d.Spec.Template.Spec
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Deployment %s: the selector %v does not select its own pods (%v)", name, d.Spec.Selector, err)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Errorf("Deployment %s: host namespaces (hostNetwork %v, hostPID %v, hostIPC %v)", name, spec.HostNetwork, spec.HostPID, spec.HostIPC)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("Deployment %s: automountServiceAccountToken must be false", name)
	}
	if sa := spec.ServiceAccountName; sa != "" && sa != "default" {
		if r.serviceAccounts[sa] == nil {
			t.Errorf("Deployment %s: ServiceAccount %s is not rendered", name, sa)
		} else if a := r.serviceAccounts[sa].AutomountServiceAccountToken; a == nil || *a {
			t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false", sa)
		}
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("Deployment %s: volume %s is a hostPath", name, v.Name)
		}
	}
	if len(spec.Containers) == 0 {
		t.Errorf("Deployment %s: no container", name)
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		at := fmt.Sprintf("Deployment %s container %s", name, c.Name)
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: no securityContext", at)
			sc = &corev1.SecurityContext{}
		}
		if nonRoot := firstNonNil(sc.RunAsNonRoot, psc.RunAsNonRoot); nonRoot == nil || !*nonRoot {
			t.Errorf("%s: runAsNonRoot must be true", at)
		}
		if uid := firstNonNil(sc.RunAsUser, psc.RunAsUser); uid == nil || *uid == 0 {
			t.Errorf("%s: runAsUser must be set to a non-root UID (runAsNonRoot alone fails on images with a named user)", at)
		}
		if gid := firstNonNil(sc.RunAsGroup, psc.RunAsGroup); gid == nil || *gid == 0 {
			t.Errorf("%s: runAsGroup must be set to a non-root GID", at)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem must be true", at)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation must be false", at)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s: privileged", at)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s: capabilities must drop ALL and add none (%+v)", at, sc.Capabilities)
		}
		if sp := firstNonNil(sc.SeccompProfile, psc.SeccompProfile); sp == nil || sp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: seccompProfile must be RuntimeDefault", at)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[res]
			lim, hasLim := c.Resources.Limits[res]
			switch {
			case !hasReq || !hasLim || req.Sign() <= 0 || lim.Sign() <= 0:
				t.Errorf("%s: resources: %s request and limit must both be set", at, res)
			case req.Cmp(lim) > 0:
				t.Errorf("%s: resources: %s request %s above the limit %s", at, res, req.String(), lim.String())
			}
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				t.Errorf("%s: port %s uses hostPort", at, p.Name)
			}
		}
		if !strings.Contains(path.Base(c.Image), ":") && !strings.Contains(c.Image, "@") {
			t.Errorf("%s: image %q has neither a tag nor a digest", at, c.Image)
		}
		for _, m := range c.VolumeMounts {
			v := volume(spec, m.Name)
			if v == nil {
				t.Errorf("%s: mount %s: no such volume", at, m.Name)
				continue
			}
			if (v.Secret != nil || v.ConfigMap != nil || v.Projected != nil) && (m.SubPath != "" || m.SubPathExpr != "") {
				t.Errorf("%s: mount %s: subPath on a Secret or ConfigMap volume: the kubelet never updates it", at, m.Name)
			}
			if v.Secret != nil && !m.ReadOnly {
				t.Errorf("%s: mount %s: Secret volumes are mounted readOnly", at, m.Name)
			}
		}
	}
}

func checkUser(t *testing.T, name string, spec corev1.PodSpec, c *corev1.Container, uid int64) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if u := firstNonNil(sc.RunAsUser, psc.RunAsUser); u == nil || *u != uid {
		t.Errorf("Deployment %s: runAsUser must be the image's user %d", name, uid)
	}
	if g := firstNonNil(sc.RunAsGroup, psc.RunAsGroup); g == nil || *g != uid {
		t.Errorf("Deployment %s: runAsGroup must be the image's group %d", name, uid)
	}
}

// checkGateway checks the gateway's container against its configuration:
// ports, probes, shutdown, memory, the certificate volume (none with
// workload identity: checkWorkloadIdentity).
func checkGateway(t *testing.T, r *rendered, d *appsv1.Deployment, c *corev1.Container, cfg *config.Config, workloadIdentity bool) {
	spec := d.Spec.Template.Spec
	if want := "obo-gateway:latest"; r.dir == "base" && c.Image != want {
		t.Errorf("image %q, want the placeholder %q set by images: in the kustomization", c.Image, want)
	}

	// Ports: the names the Services and probes use, the numbers the
	// configuration listens on.
	api, admin := containerPort(c, "api"), containerPort(c, "admin")
	if api == nil || admin == nil {
		t.Fatalf("container ports api and admin must both be named (got %+v)", c.Ports)
	}
	if p := portOf(t, cfg.Listen); api.ContainerPort != p {
		t.Errorf("container port api is %d, listen is %q", api.ContainerPort, cfg.Listen)
	}
	if p := portOf(t, cfg.AdminListen); admin.ContainerPort != p {
		t.Errorf("container port admin is %d, admin_listen is %q", admin.ContainerPort, cfg.AdminListen)
	}

	// Probes: httpGet on the admin listener; liveness never on /readyz (an
	// Entra outage would restart every pod).
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"startupProbe", c.StartupProbe, "/healthz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: must be an httpGet probe", p.kind)
			continue
		}
		h := p.probe.HTTPGet
		if port := resolvePort(c, h.Port); port != admin.ContainerPort {
			t.Errorf("%s: port %s is not the admin port %d", p.kind, h.Port.String(), admin.ContainerPort)
		}
		if h.Path != p.path {
			t.Errorf("%s: path %q, want %q", p.kind, h.Path, p.path)
		}
		if h.Scheme != "" && h.Scheme != corev1.URISchemeHTTP {
			t.Errorf("%s: scheme %s: the admin listener is plain HTTP", p.kind, h.Scheme)
		}
		if p.probe.TimeoutSeconds < 1 || p.probe.PeriodSeconds < 1 || p.probe.FailureThreshold < 1 {
			t.Errorf("%s: timeoutSeconds, periodSeconds and failureThreshold must be set", p.kind)
		}
	}
	if p := c.LivenessProbe; p != nil && p.FailureThreshold < 3 {
		t.Errorf("livenessProbe: failureThreshold %d restarts the gateway on one slow answer", p.FailureThreshold)
	}
	if p := c.StartupProbe; p != nil && time.Duration(p.PeriodSeconds*p.FailureThreshold)*time.Second < 30*time.Second {
		t.Errorf("startupProbe: gives the gateway less than 30s to start")
	}

	// Shutdown: the kubelet must not kill the gateway before it drained.
	var sleep time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if c.Lifecycle.PreStop.Sleep == nil {
			t.Errorf("preStop: only the sleep action works (the image has no shell)")
		} else {
			sleep = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		}
	}
	tg := spec.TerminationGracePeriodSeconds
	if tg == nil || time.Duration(*tg)*time.Second <= sleep+cfg.ShutdownGrace.D() {
		t.Errorf("terminationGracePeriodSeconds %v must exceed the preStop sleep (%s) plus shutdown_grace (%s)", ptrString(tg), sleep, cfg.ShutdownGrace.D())
	}

	// Memory: both token caches live in the container.
	limit := c.Resources.Limits[corev1.ResourceMemory]
	budgets := int64(cfg.Cache.MemoryBudget + cfg.Cache.VerifiedTokensBudget)
	env, _ := containerEnv(t, c)
	goMemLimit, err := parseGoMemLimit(env["GOMEMLIMIT"])
	switch {
	case err != nil:
		t.Errorf("GOMEMLIMIT: %v", err)
	case goMemLimit >= limit.Value():
		t.Errorf("GOMEMLIMIT %s must be below limits.memory %s", env["GOMEMLIMIT"], limit.String())
	case budgets > goMemLimit/2:
		t.Errorf("cache.memory_budget + cache.verified_tokens_budget = %s: more than half of GOMEMLIMIT %s leaves the garbage collector no room", resource.NewQuantity(budgets, resource.BinarySI), env["GOMEMLIMIT"])
	}

	// The certificate: a Secret volume mounted as a directory.
	var found bool
	for _, v := range spec.Volumes {
		if v.Secret == nil || v.Secret.SecretName != credentialSecret {
			continue
		}
		found = true
		if v.Secret.Optional != nil && *v.Secret.Optional {
			t.Errorf("volume %s: an optional Secret starts the gateway without its credential", v.Name)
		}
		if m := v.Secret.DefaultMode; m == nil || *m&0o007 != 0 {
			t.Errorf("volume %s: defaultMode must not let other users read the key", v.Name)
		}
		if psc := spec.SecurityContext; psc == nil || psc.FSGroup == nil || *psc.FSGroup != imageUID {
			t.Errorf("fsGroup must be %d so that the gateway can read its Secret files", imageUID)
		}
	}
	if !found && !workloadIdentity {
		t.Errorf("no volume of the Secret %s", credentialSecret)
	}
}

// checkServices: every Service selects the pods of one Deployment, and each
// of its ports targets a container port of those pods by name.
func checkServices(t *testing.T, r *rendered) {
	if r.services[gatewayDeployment] == nil {
		t.Errorf("no Service %s", gatewayDeployment)
	}
	for name, s := range r.services {
		if s.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service %s: type %s, want ClusterIP (expose the API through an ingress)", name, s.Spec.Type)
		}
		d := selectedDeployment(t, r, "Service "+name, s.Spec.Selector)
		if d == nil {
			continue
		}
		if len(s.Spec.Ports) == 0 {
			t.Errorf("Service %s: no port", name)
		}
		for _, p := range s.Spec.Ports {
			if p.Name == "" {
				t.Errorf("Service %s: port %d has no name", name, p.Port)
			}
			if p.TargetPort.Type != intstr.String {
				t.Errorf("Service %s port %s: targetPort %s: name the container port", name, p.Name, p.TargetPort.String())
				continue
			}
			cp := podPort(d.Spec.Template.Spec, p.TargetPort.StrVal)
			switch {
			case cp == nil:
				t.Errorf("Service %s port %s: targetPort %q is no container port of Deployment %s", name, p.Name, p.TargetPort.StrVal, d.Name)
			case protocol(cp.Protocol) != protocol(p.Protocol):
				t.Errorf("Service %s port %s: protocol %s, the container port's is %s", name, p.Name, protocol(p.Protocol), protocol(cp.Protocol))
			}
		}
	}
	if s := r.services[gatewayDeployment]; s != nil {
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 80 || s.Spec.Ports[0].TargetPort.StrVal != "api" {
			t.Errorf("Service %s: want the one port 80 → api (the admin port has a Service of its own)", s.Name)
		}
	}
}

// checkServiceMonitor: the ServiceMonitor selects the metrics Service by its
// labels and port name, and that port reaches the admin listener.
func checkServiceMonitor(t *testing.T, r *rendered, d *appsv1.Deployment, c *corev1.Container, cfg *config.Config) {
	if len(r.serviceMonitors) != 1 {
		t.Fatalf("%d ServiceMonitors, want 1", len(r.serviceMonitors))
	}
	for name, sm := range r.serviceMonitors {
		ns := sm.Spec.NamespaceSelector
		if ns.Any || len(ns.MatchNames) > 0 {
			t.Errorf("ServiceMonitor %s: namespaceSelector: the Service is in the ServiceMonitor's own namespace", name)
		}
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Errorf("ServiceMonitor %s: selector %v selects everything (%v)", name, sm.Spec.Selector, err)
			continue
		}
		var svcs []*corev1.Service
		for _, s := range r.services {
			if sel.Matches(labels.Set(s.Labels)) {
				svcs = append(svcs, s)
			}
		}
		if len(svcs) != 1 {
			t.Errorf("ServiceMonitor %s: selects %d Services, want 1", name, len(svcs))
			continue
		}
		s := svcs[0]
		if len(sm.Spec.Endpoints) == 0 {
			t.Errorf("ServiceMonitor %s: no endpoint", name)
		}
		for _, e := range sm.Spec.Endpoints {
			var sp *corev1.ServicePort
			for i := range s.Spec.Ports {
				if s.Spec.Ports[i].Name == e.Port {
					sp = &s.Spec.Ports[i]
				}
			}
			if sp == nil {
				t.Errorf("ServiceMonitor %s: port %q is no port name of Service %s", name, e.Port, s.Name)
				continue
			}
			if e.Port != "metrics" || e.Path != "/metrics" || e.Interval != "30s" {
				t.Errorf("ServiceMonitor %s: endpoint port %q path %q interval %q, want metrics, /metrics, 30s", name, e.Port, e.Path, e.Interval)
			}
			if sel, _ := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}); !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("Service %s does not select the gateway's pods", s.Name)
			} else if resolvePort(c, sp.TargetPort) != portOf(t, cfg.AdminListen) {
				t.Errorf("Service %s port %s: targetPort %s is not the admin listener (%s)", s.Name, sp.Name, sp.TargetPort.String(), cfg.AdminListen)
			}
		}
	}
}

// checkNetworkPolicies evaluates the NetworkPolicies as a network plugin
// would, for the flows that matter.
func checkNetworkPolicies(t *testing.T, r *rendered, d *appsv1.Deployment, c *corev1.Container, cfg *config.Config, redis bool) {
	gwPod := pod{ns: ownNS, labels: d.Spec.Template.Labels, spec: d.Spec.Template.Spec}
	admin, api := portOf(t, cfg.AdminListen), portOf(t, cfg.Listen)
	tcp := corev1.ProtocolTCP

	if n := len(r.policiesFor(gwPod, networkingv1.PolicyTypeIngress)); n == 0 {
		t.Fatal("no NetworkPolicy restricts ingress to the gateway: everything may reach /metrics")
	}
	if n := len(r.policiesFor(gwPod, networkingv1.PolicyTypeEgress)); n == 0 {
		t.Error("no NetworkPolicy restricts the gateway's egress")
	}

	prometheus := pod{ns: monitoringNS, labels: map[string]string{"app.kubernetes.io/name": "prometheus"}}
	sameNS := pod{ns: ownNS, labels: map[string]string{"app": "frontend"}}
	ingressCtl := pod{ns: "ingress-nginx", labels: map[string]string{"app.kubernetes.io/name": "ingress-nginx"}}
	otherNS := pod{ns: "default", labels: map[string]string{"app": "anything"}}
	internet := pod{ip: netip.MustParseAddr("203.0.113.7")}
	entra := pod{ip: netip.MustParseAddr("20.190.160.1")}
	for _, f := range []struct {
		from pod
		port int32
		want bool
	}{
		{prometheus, admin, true},
		{sameNS, admin, false},
		{ingressCtl, admin, false},
		{otherNS, admin, false},
		{internet, admin, false},
		{sameNS, api, true},
		{ingressCtl, api, true},
		{otherNS, api, false},
		{internet, api, false},
	} {
		if got := r.admitsIngress(gwPod, f.from, f.port, tcp); got != f.want {
			t.Errorf("ingress to the gateway's port %d from %s: admitted %v, want %v", f.port, f.from, got, f.want)
		}
	}

	// Structurally, too: every rule that opens the admin port names the
	// monitoring namespace, and only it, in each of its peers.
	for _, np := range r.policiesFor(gwPod, networkingv1.PolicyTypeIngress) {
		for i, rule := range np.Spec.Ingress {
			if !rulePortsMatch(rule.Ports, admin, tcp, gwPod) {
				continue
			}
			if len(rule.From) == 0 {
				t.Errorf("NetworkPolicy %s ingress[%d]: opens port %d to everyone", np.Name, i, admin)
			}
			for j, peer := range rule.From {
				if peer.IPBlock != nil || peer.NamespaceSelector == nil || !selectsOnlyNamespace(peer.NamespaceSelector, monitoringNS) {
					t.Errorf("NetworkPolicy %s ingress[%d].from[%d]: opens port %d to other than the namespace %s", np.Name, i, j, admin, monitoringNS)
				}
			}
		}
	}

	kubeDNS := pod{ns: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}}
	nodeLocalDNS := pod{ip: netip.MustParseAddr("169.254.20.10")}
	for _, f := range []struct {
		to    pod
		port  int32
		proto corev1.Protocol
		want  bool
	}{
		{kubeDNS, 53, corev1.ProtocolUDP, true},
		{kubeDNS, 53, tcp, true},
		{nodeLocalDNS, 53, corev1.ProtocolUDP, true},
		{entra, 443, tcp, true},
		{internet, 80, tcp, false},
		{internet, 6379, tcp, false},
		{otherNS, 5432, tcp, false},
	} {
		if got := r.admitsEgress(gwPod, f.to, f.port, f.proto); got != f.want {
			t.Errorf("egress from the gateway to %s port %d/%s: admitted %v, want %v", f.to, f.port, f.proto, got, f.want)
		}
	}
	// Each in-cluster upstream (http://NAME.NAMESPACE.svc…:PORT) must be
	// reachable; the test assumes its pods are labelled
	// app.kubernetes.io/name=NAME and listen on the Service's port.
	for _, rt := range cfg.Routes {
		u, err := url.Parse(rt.Upstream)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(u.Hostname(), ".")
		if len(parts) < 3 || parts[2] != "svc" {
			continue
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		n, _ := strconv.Atoi(port)
		upstream := pod{ns: parts[1], labels: map[string]string{"app.kubernetes.io/name": parts[0]}}
		if !r.admitsEgress(gwPod, upstream, int32(n), tcp) {
			t.Errorf("route %s: egress to its upstream %s (%s) is not admitted", rt.Name, rt.Upstream, upstream)
		}
	}

	if !redis {
		return
	}
	rd := r.deployments["obo-gateway-redis"]
	if rd == nil {
		t.Fatal("no Deployment obo-gateway-redis")
	}
	redisPod := pod{ns: ownNS, labels: rd.Spec.Template.Labels, spec: rd.Spec.Template.Spec}
	if !r.admitsEgress(gwPod, redisPod, 6379, tcp) {
		t.Error("egress from the gateway to Redis on 6379 is not admitted")
	}
	if len(r.policiesFor(redisPod, networkingv1.PolicyTypeIngress)) == 0 || len(r.policiesFor(redisPod, networkingv1.PolicyTypeEgress)) == 0 {
		t.Error("no NetworkPolicy restricts Redis's ingress and egress")
	}
	for _, f := range []struct {
		from pod
		want bool
	}{
		{gwPod, true},
		{sameNS, false},
		{prometheus, false},
		{internet, false},
	} {
		if got := r.admitsIngress(redisPod, f.from, 6379, tcp); got != f.want {
			t.Errorf("ingress to Redis from %s: admitted %v, want %v", f.from, got, f.want)
		}
	}
	for _, to := range []pod{entra, kubeDNS, gwPod} {
		if r.admitsEgress(redisPod, to, 443, tcp) || r.admitsEgress(redisPod, to, 53, corev1.ProtocolUDP) {
			t.Errorf("egress from Redis to %s is admitted", to)
		}
	}
}

// checkAvailability: PodDisruptionBudget and HorizontalPodAutoscaler.
func checkAvailability(t *testing.T, r *rendered, d *appsv1.Deployment) {
	podLabels := labels.Set(d.Spec.Template.Labels)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("Deployment %s: want 2 replicas or more", d.Name)
	}
	pdb := r.pdbs[gatewayDeployment]
	if pdb == nil {
		t.Fatalf("no PodDisruptionBudget %s", gatewayDeployment)
	}
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget %s does not select the gateway's pods", pdb.Name)
	}
	switch {
	case pdb.Spec.MaxUnavailable != nil && pdb.Spec.MinAvailable == nil:
		if pdb.Spec.MaxUnavailable.IntValue() < 1 {
			t.Errorf("PodDisruptionBudget %s: maxUnavailable %s blocks every drain", pdb.Name, pdb.Spec.MaxUnavailable.String())
		}
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MaxUnavailable == nil:
		if pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
			t.Errorf("PodDisruptionBudget %s: minAvailable %s blocks every drain", pdb.Name, pdb.Spec.MinAvailable.String())
		}
	default:
		t.Errorf("PodDisruptionBudget %s: set one of minAvailable and maxUnavailable", pdb.Name)
	}

	hpa := r.hpas[gatewayDeployment]
	if hpa == nil {
		t.Fatalf("no HorizontalPodAutoscaler %s", gatewayDeployment)
	}
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("HorizontalPodAutoscaler %s scales %s %s %s, not the gateway", hpa.Name, ref.APIVersion, ref.Kind, ref.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 2 || hpa.Spec.MaxReplicas != 10 {
		t.Errorf("HorizontalPodAutoscaler %s: replicas %v..%d, want 2..10", hpa.Name, ptrString(hpa.Spec.MinReplicas), hpa.Spec.MaxReplicas)
	}
	var cpu bool
	for _, m := range hpa.Spec.Metrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU &&
			m.Resource.Target.Type == autoscalingv2.UtilizationMetricType && m.Resource.Target.AverageUtilization != nil {
			cpu = true
		}
	}
	if !cpu {
		t.Errorf("HorizontalPodAutoscaler %s: no CPU utilisation target", hpa.Name)
	}
}

// checkRedis: the overlay's Redis and the gateway agree on the address and
// the password, and Redis runs as a cache.
func checkRedis(t *testing.T, r *rendered, d *appsv1.Deployment, c *corev1.Container, cfg *config.Config) {
	rd := r.deployments["obo-gateway-redis"]
	if rd == nil {
		t.Fatal("no Deployment obo-gateway-redis")
	}
	rc := container(rd.Spec.Template.Spec, "redis")
	if rc == nil {
		t.Fatal("Deployment obo-gateway-redis: no container redis")
	}
	if _, err := cfg.Cache.Redis.Keys(); err != nil {
		t.Errorf("encryption keys: %v", err)
	}
	host, port, err := net.SplitHostPort(cfg.Cache.Redis.Address)
	if err != nil {
		t.Fatalf("cache.redis.address %q: %v", cfg.Cache.Redis.Address, err)
	}
	svc := r.services[host]
	if svc == nil {
		t.Fatalf("cache.redis.address %q: no Service %s", cfg.Cache.Redis.Address, host)
	}
	if sd := selectedDeployment(t, r, "Service "+host, svc.Spec.Selector); sd != rd {
		t.Errorf("Service %s does not select the Redis pods", host)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if strconv.Itoa(int(svc.Spec.Ports[i].Port)) == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		t.Errorf("cache.redis.address %q: Service %s has no port %s", cfg.Cache.Redis.Address, host, port)
	} else if resolvePort(rc, sp.TargetPort) != 6379 {
		t.Errorf("Service %s port %s does not reach Redis's 6379", host, port)
	}

	// One Secret key is the gateway's password and Redis's requirepass.
	ref := func(c *corev1.Container, name string) string {
		for _, e := range c.Env {
			if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				return e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
			}
		}
		return ""
	}
	gwRef, redisRef := ref(c, "OBO_GATEWAY_CACHE_REDIS_PASSWORD"), ref(rc, "REDIS_PASSWORD")
	if gwRef == "" || gwRef != redisRef {
		t.Errorf("the gateway's Redis password (%q) and Redis's (%q) must come from the same Secret key", gwRef, redisRef)
	}
	if strings.Contains(ref(rc, "OBO_GATEWAY_CACHE_REDIS_ENCRYPTION_KEYS"), "/") {
		t.Error("Redis must never see the encryption keys")
	}
	for flag, want := range map[string]string{
		"--requirepass": "$(REDIS_PASSWORD)", // expanded by the kubelet from the Secret
		"--save":        "",                  // no snapshots
		"--appendonly":  "no",                // no append-only file
	} {
		if i := slices.Index(rc.Args, flag); i < 0 || i+1 >= len(rc.Args) || rc.Args[i+1] != want {
			t.Errorf("redis args %q: want %s %q", rc.Args, flag, want)
		}
	}
	if !slices.Contains(rc.Args, "--maxmemory") {
		t.Errorf("redis args %q: want --maxmemory below limits.memory", rc.Args)
	}
	for _, p := range []*corev1.Probe{rc.ReadinessProbe, rc.LivenessProbe} {
		if p == nil || p.Exec == nil {
			t.Error("Redis: want exec readiness and liveness probes (redis-cli ping)")
		}
	}
	var data bool
	for _, m := range rc.VolumeMounts {
		if v := volume(rd.Spec.Template.Spec, m.Name); m.MountPath == "/data" && v != nil && v.EmptyDir != nil {
			data = true
		}
	}
	if !data {
		t.Error("Redis: /data must be an emptyDir (read-only root filesystem)")
	}
}

// What AKS workload identity keys on, and what its webhook adds to a pod
// (Azure/azure-workload-identity, docs/kubernetes.md).
const (
	wiUseLabel          = "azure.workload.identity/use"
	wiClientIDAnnotaton = "azure.workload.identity/client-id"
	wiTenantIDAnnotaton = "azure.workload.identity/tenant-id"
	wiTokenVolume       = "azure-identity-token"
	wiTokenDir          = "/var/run/secrets/azure/tokens"
	// The tenant the webhook injects for a service account without the
	// tenant-id annotation: the one it was installed for, the cluster's.
	wiClusterTenant = "99999999-9999-9999-9999-999999999999"
	credentialEnv   = "OBO_GATEWAY_ENTRA_CREDENTIAL"
	credentialDir   = "/etc/obo-gateway/credential" // the base's certificate mount
)

// webhookEnv is what the workload identity webhook adds to the gateway's
// container when the pod is created: the Azure SDK's variables, from the
// annotations of the pod's service account, each unless the container sets
// it already (the webhook leaves those alone), and a token file (written
// into dir, as the projected volume would hold it).
func webhookEnv(t *testing.T, r *rendered, d *appsv1.Deployment, c *corev1.Container, dir string) map[string]string {
	t.Helper()
	spec := d.Spec.Template.Spec
	sa := r.serviceAccounts[spec.ServiceAccountName]
	if sa == nil {
		t.Fatalf("the pods' ServiceAccount %q is not rendered: the webhook has no annotation to read", spec.ServiceAccountName)
	}
	tenant := sa.Annotations[wiTenantIDAnnotaton]
	if tenant == "" {
		tenant = wiClusterTenant
	}
	// A service-account token as the kubelet projects it; the gateway
	// reads it, Entra alone checks its signature.
	now := time.Now()
	seg := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	token := seg(map[string]any{"alg": "RS256", "kid": "stand-in"}) + "." + seg(map[string]any{
		"aud": []string{"api://AzureADTokenExchange"},
		"iss": "https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/",
		"sub": "system:serviceaccount:" + ownNS + ":" + sa.Name,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}) + "." + base64.RawURLEncoding.EncodeToString([]byte("not a signature"))
	tokenFile := filepath.Join(dir, wiTokenVolume)
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range map[string]string{
		"AZURE_CLIENT_ID":            sa.Annotations[wiClientIDAnnotaton],
		"AZURE_TENANT_ID":            tenant,
		"AZURE_AUTHORITY_HOST":       "https://login.microsoftonline.com/", // as the webhook writes it, with the slash
		"AZURE_FEDERATED_TOKEN_FILE": tokenFile,
	} {
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == k }) {
			env[k] = v
		}
	}
	return env
}

// guidRE is a GUID, as Entra writes client and tenant IDs.
var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkWorkloadIdentity: the pods ask for the webhook and run as a service
// account that names the gateway's app registration; nothing of the
// certificate is left, and nothing the webhook adds is set by hand; the
// gateway reads the credential's variables; and the overlay is the base
// with exactly these changes.
func checkWorkloadIdentity(t *testing.T, r *rendered, d *appsv1.Deployment) {
	spec := d.Spec.Template.Spec

	// The webhook mutates only pods labelled so, with the string "true".
	if got, ok := d.Spec.Template.Labels[wiUseLabel]; !ok || got != "true" {
		t.Errorf("the pod template's label %s is %q (set: %v), want \"true\"", wiUseLabel, got, ok)
	}

	// The pods' own service account carries the client ID (and tenant) of
	// the gateway's app registration, the GUIDs of gateway.yaml: the
	// webhook's AZURE_CLIENT_ID and AZURE_TENANT_ID override the file.
	var file struct {
		Entra struct {
			TenantID string `json:"tenant_id"`
			ClientID string `json:"client_id"`
		} `json:"entra"`
	}
	c := container(spec, gatewayContainer)
	if err := yaml.Unmarshal([]byte(configData(t, r, spec, c)), &file); err != nil {
		t.Fatalf("gateway.yaml: %v", err)
	}
	saName := spec.ServiceAccountName
	sa := r.serviceAccounts[saName]
	switch {
	case saName == "" || saName == "default":
		t.Errorf("the pods run as the namespace's default service account: name the annotated one (serviceAccountName)")
	case sa == nil:
		t.Errorf("the pods' ServiceAccount %s is not rendered", saName)
	default:
		for _, a := range []struct{ annotation, want, setting string }{
			{wiClientIDAnnotaton, file.Entra.ClientID, "entra.client_id"},
			{wiTenantIDAnnotaton, file.Entra.TenantID, "entra.tenant_id"},
		} {
			got := strings.TrimSpace(sa.Annotations[a.annotation])
			switch {
			case got == "":
				t.Errorf("ServiceAccount %s (the pods'): annotation %s is missing or empty", saName, a.annotation)
			case !guidRE.MatchString(got):
				t.Errorf("ServiceAccount %s: annotation %s is %q, not a GUID", saName, a.annotation, got)
			case got != a.want:
				t.Errorf("ServiceAccount %s: annotation %s is %s but %s is %s: the webhook's variable would override the file", saName, a.annotation, got, a.setting, a.want)
			}
		}
	}
	for name, other := range r.serviceAccounts {
		if name != saName && other.Annotations[wiClientIDAnnotaton] != "" {
			t.Errorf("ServiceAccount %s is annotated %s but the pods run as %q", name, wiClientIDAnnotaton, saName)
		}
	}

	// Nothing of the certificate: no volume of its Secret, no mount where
	// it was, no variable from it or naming a certificate file.
	for _, v := range spec.Volumes {
		refs := v.Secret != nil && v.Secret.SecretName == credentialSecret
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				refs = refs || (src.Secret != nil && src.Secret.Name == credentialSecret)
			}
		}
		if refs {
			t.Errorf("volume %s: the certificate Secret %s is still a volume of the pod", v.Name, credentialSecret)
		}
		// What the webhook adds, the overlay must not: the webhook would
		// add a second one.
		if v.Name == wiTokenVolume || (v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil })) {
			t.Errorf("volume %s: the service-account token volume is the webhook's to add", v.Name)
		}
	}
	for _, ct := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		for _, m := range ct.VolumeMounts {
			if m.MountPath == credentialDir || strings.HasPrefix(m.MountPath, credentialDir+"/") {
				t.Errorf("container %s: mount %s at %s, where the certificate was", ct.Name, m.Name, m.MountPath)
			}
			if m.MountPath == wiTokenDir {
				t.Errorf("container %s: mount at %s: the webhook's to add", ct.Name, m.MountPath)
			}
		}
		for _, e := range ct.EnvFrom {
			if e.SecretRef != nil && e.SecretRef.Name == credentialSecret {
				t.Errorf("container %s: envFrom the certificate Secret %s", ct.Name, credentialSecret)
			}
		}
		for _, e := range ct.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == credentialSecret {
				t.Errorf("container %s: env %s from the certificate Secret %s", ct.Name, e.Name, credentialSecret)
			}
			switch e.Name {
			case "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "OBO_GATEWAY_ENTRA_CERTIFICATE_KEY_PATH":
				if e.Value != "" || e.ValueFrom != nil {
					t.Errorf("container %s: env %s names a certificate", ct.Name, e.Name)
				}
			case "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST", "AZURE_FEDERATED_TOKEN_FILE":
				t.Errorf("container %s: env %s is set in the spec: the webhook then leaves it, and its own is lost", ct.Name, e.Name)
			}
		}
	}

	// The credential, as a literal in the container's environment.
	var credential *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == credentialEnv {
			credential = &c.Env[i]
		}
	}
	if credential == nil || credential.ValueFrom != nil || credential.Value != "workload_identity" {
		t.Errorf("container %s: want env %s=workload_identity (got %+v)", c.Name, credentialEnv, credential)
	}
	// ... and the variables are the gateway's.
	fields := map[string]string{}
	for _, v := range config.EnvVars() {
		fields[v.Name] = v.Field
	}
	for name, field := range map[string]string{
		credentialEnv:                "entra.credential",
		"AZURE_FEDERATED_TOKEN_FILE": "entra.workload_identity.token_file",
	} {
		if fields[name] != field {
			t.Errorf("config.EnvVars: %s sets %q, want %s", name, fields[name], field)
		}
	}

	// Nothing else changed: the base, with the certificate's volume and
	// mount taken out, is the overlay with its additions taken out.
	base := render(t, "base")
	sameObjects(t, "Deployment", base.deployments, r.deployments, func(name string, bd, wd *appsv1.Deployment) (*appsv1.Deployment, *appsv1.Deployment) {
		bd, wd = bd.DeepCopy(), wd.DeepCopy()
		bs, ws := &bd.Spec.Template.Spec, &wd.Spec.Template.Spec
		bs.Volumes = slices.DeleteFunc(bs.Volumes, func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == credentialSecret })
		for i := range bs.Containers {
			bs.Containers[i].VolumeMounts = slices.DeleteFunc(bs.Containers[i].VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == credentialDir })
		}
		delete(wd.Spec.Template.Labels, wiUseLabel)
		for i := range ws.Containers {
			ws.Containers[i].Env = slices.DeleteFunc(ws.Containers[i].Env, func(e corev1.EnvVar) bool {
				return e.Name == credentialEnv || (e.Name == "AZURE_CLIENT_CERTIFICATE_PATH" && e.Value == "" && e.ValueFrom == nil)
			})
		}
		return bd, wd
	})
	sameObjects(t, "ServiceAccount", base.serviceAccounts, r.serviceAccounts, func(name string, bs, ws *corev1.ServiceAccount) (*corev1.ServiceAccount, *corev1.ServiceAccount) {
		ws = ws.DeepCopy()
		delete(ws.Annotations, wiClientIDAnnotaton)
		delete(ws.Annotations, wiTenantIDAnnotaton)
		if len(ws.Annotations) == 0 {
			ws.Annotations = nil
		}
		return bs, ws
	})
	sameObjects(t, "Service", base.services, r.services, nil)
	sameObjects(t, "ConfigMap", base.configMaps, r.configMaps, nil)
	sameObjects(t, "Secret", base.secrets, r.secrets, nil)
	sameObjects(t, "PodDisruptionBudget", base.pdbs, r.pdbs, nil)
	sameObjects(t, "HorizontalPodAutoscaler", base.hpas, r.hpas, nil)
	sameObjects(t, "NetworkPolicy", base.netpols, r.netpols, nil)
	sameObjects(t, "ServiceMonitor", base.serviceMonitors, r.serviceMonitors, nil)
}

// sameObjects: the overlay renders the objects of the base and no other,
// each equal to the base's once norm (if any) has taken out the
// differences that are meant.
func sameObjects[T any](t *testing.T, kind string, base, overlay map[string]*T, norm func(name string, b, o *T) (*T, *T)) {
	t.Helper()
	for name := range overlay {
		if base[name] == nil {
			t.Errorf("%s %s: not in the base", kind, name)
		}
	}
	for name, b := range base {
		o := overlay[name]
		if o == nil {
			t.Errorf("%s %s: in the base, lost by the overlay", kind, name)
			continue
		}
		if norm != nil {
			b, o = norm(name, b, o)
		}
		if !equality.Semantic.DeepEqual(b, o) {
			t.Errorf("%s %s differs from the base's beyond the overlay's changes:\n%s", kind, name, firstDifference(t, b, o))
		}
	}
}

// firstDifference shows where the JSON forms of a and b first part:
// a few lines of each from there.
func firstDifference(t *testing.T, a, b any) string {
	t.Helper()
	lines := func(v any) []string {
		j, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(string(j), "\n")
	}
	la, lb := lines(a), lines(b)
	i := 0
	for i < len(la) && i < len(lb) && la[i] == lb[i] {
		i++
	}
	excerpt := func(ls []string) string {
		return strings.Join(ls[min(i, len(ls)):min(i+6, len(ls))], "\n")
	}
	return fmt.Sprintf("at line %d of the JSON\nbase:\n%s\noverlay:\n%s", i+1, excerpt(la), excerpt(lb))
}

// checkDocs: docs/kubernetes.md creates every Secret the manifests reference,
// with every key they use, and shows the apply command.
func checkDocs(t *testing.T, r *rendered, certPath string) {
	b, err := os.ReadFile("../docs/kubernetes.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.ReplaceAll(string(b), "\\\n", " ")
	created := map[string]bool{}
	createRE := regexp.MustCompile(`kubectl(?: -n \S+)? create secret generic ([a-z0-9-]+)([^\n]*)`)
	keyRE := regexp.MustCompile(`--from-(?:file|literal)=([A-Za-z0-9._-]+)=`)
	for _, m := range createRE.FindAllStringSubmatch(doc, -1) {
		for _, k := range keyRE.FindAllStringSubmatch(m[2], -1) {
			created[m[1]+"/"+k[1]] = true
		}
	}
	if !regexp.MustCompile(`kubectl apply (?:-n \S+ )?-k deploy/` + regexp.QuoteMeta(r.dir) + `\s`).MatchString(doc) {
		t.Errorf("docs/kubernetes.md: no `kubectl apply -k deploy/%s`", r.dir)
	}
	for name, d := range r.deployments {
		spec := d.Spec.Template.Spec
		for _, v := range spec.Volumes {
			if v.Secret == nil {
				continue
			}
			// The keys the gateway reads from it: the certificate file.
			var c *corev1.Container
			for i := range spec.Containers {
				if mountOfVolume(&spec.Containers[i], v.Name) != nil {
					c = &spec.Containers[i]
				}
			}
			if name == gatewayDeployment && v.Secret.SecretName == credentialSecret && c != nil {
				key := strings.TrimPrefix(certPath, mountOfVolume(c, v.Name).MountPath+"/")
				if !created[v.Secret.SecretName+"/"+key] {
					t.Errorf("docs/kubernetes.md: no `kubectl create secret generic %s --from-file=%s=…`", v.Secret.SecretName, key)
				}
			}
		}
		for _, c := range spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					ref := e.ValueFrom.SecretKeyRef
					if !created[ref.Name+"/"+ref.Key] {
						t.Errorf("docs/kubernetes.md: no `kubectl create secret generic %s` with the key %s (Deployment %s env %s)", ref.Name, ref.Key, name, e.Name)
					}
				}
			}
		}
	}
}

// pod is one end of a flow: a pod (ns and labels, and its spec when named
// ports must resolve), or an address outside the cluster (ip).
type pod struct {
	ns     string
	labels map[string]string
	spec   corev1.PodSpec
	ip     netip.Addr
}

func (p pod) String() string {
	if p.ip.IsValid() {
		return p.ip.String()
	}
	return fmt.Sprintf("pod %v in %s", p.labels, p.ns)
}

// policiesFor are the NetworkPolicies that select p for the direction.
func (r *rendered) policiesFor(p pod, dir networkingv1.PolicyType) []*networkingv1.NetworkPolicy {
	var nps []*networkingv1.NetworkPolicy
	for _, np := range r.netpols {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(labels.Set(p.labels)) || p.ns != ownNS {
			continue
		}
		types := np.Spec.PolicyTypes
		if len(types) == 0 { // the API's default
			types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			if len(np.Spec.Egress) > 0 {
				types = append(types, networkingv1.PolicyTypeEgress)
			}
		}
		if slices.Contains(types, dir) {
			nps = append(nps, np)
		}
	}
	return nps
}

// admitsIngress: may from open a connection to port/proto of to?
func (r *rendered) admitsIngress(to, from pod, port int32, proto corev1.Protocol) bool {
	nps := r.policiesFor(to, networkingv1.PolicyTypeIngress)
	if len(nps) == 0 {
		return true
	}
	for _, np := range nps {
		for _, rule := range np.Spec.Ingress {
			if rulePortsMatch(rule.Ports, port, proto, to) && peersMatch(rule.From, from) {
				return true
			}
		}
	}
	return false
}

// admitsEgress: may from open a connection to port/proto of to?
func (r *rendered) admitsEgress(from, to pod, port int32, proto corev1.Protocol) bool {
	nps := r.policiesFor(from, networkingv1.PolicyTypeEgress)
	if len(nps) == 0 {
		return true
	}
	for _, np := range nps {
		for _, rule := range np.Spec.Egress {
			if rulePortsMatch(rule.Ports, port, proto, to) && peersMatch(rule.To, to) {
				return true
			}
		}
	}
	return false
}

// rulePortsMatch: does a rule's port list cover port/proto of dst (whose
// container ports resolve named ports)? No ports: all ports.
func rulePortsMatch(ports []networkingv1.NetworkPolicyPort, port int32, proto corev1.Protocol, dst pod) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if protocol(derefOr(p.Protocol, corev1.ProtocolTCP)) != protocol(proto) {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.Int:
			if p.Port.IntVal == port || (p.EndPort != nil && port >= p.Port.IntVal && port <= *p.EndPort) {
				return true
			}
		default:
			if cp := podPort(dst.spec, p.Port.StrVal); cp != nil && cp.ContainerPort == port && protocol(cp.Protocol) == protocol(proto) {
				return true
			}
		}
	}
	return false
}

// peersMatch: does a rule's peer list admit p? No peers: everyone.
func peersMatch(peers []networkingv1.NetworkPolicyPeer, p pod) bool {
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		if peer.IPBlock != nil {
			cidr, err := netip.ParsePrefix(peer.IPBlock.CIDR)
			if err != nil || !p.ip.IsValid() || !cidr.Contains(p.ip) {
				continue
			}
			excluded := false
			for _, e := range peer.IPBlock.Except {
				if ex, err := netip.ParsePrefix(e); err == nil && ex.Contains(p.ip) {
					excluded = true
				}
			}
			if !excluded {
				return true
			}
			continue
		}
		if p.ip.IsValid() {
			continue // pod and namespace selectors select pods only
		}
		nsOK := p.ns == ownNS
		if peer.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
			nsOK = err == nil && sel.Matches(labels.Set{namespaceNameLabel: p.ns})
		}
		podOK := true
		if peer.PodSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			podOK = err == nil && sel.Matches(labels.Set(p.labels))
		}
		if nsOK && podOK {
			return true
		}
	}
	return false
}

// selectsOnlyNamespace: does the selector require the namespace's name
// label to be exactly ns?
func selectsOnlyNamespace(ls *metav1.LabelSelector, ns string) bool {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return false
	}
	reqs, _ := sel.Requirements()
	for _, req := range reqs {
		if req.Key() != namespaceNameLabel {
			continue
		}
		switch req.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if vs := req.Values().List(); len(vs) == 1 && vs[0] == ns {
				return true
			}
		}
	}
	return false
}

// selectedDeployment is the one Deployment whose pods the selector selects.
func selectedDeployment(t *testing.T, r *rendered, what string, selector map[string]string) *appsv1.Deployment {
	t.Helper()
	if len(selector) == 0 {
		t.Errorf("%s: empty selector", what)
		return nil
	}
	var ds []*appsv1.Deployment
	for _, d := range r.deployments {
		if labels.SelectorFromSet(selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			ds = append(ds, d)
		}
	}
	if len(ds) != 1 {
		t.Errorf("%s: selector %v selects the pods of %d Deployments, want 1", what, selector, len(ds))
		return nil
	}
	return ds[0]
}

func container(spec corev1.PodSpec, name string) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == name {
			return &spec.Containers[i]
		}
	}
	return nil
}

func volume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// mountOf is the mount of c whose path is dir.
func mountOf(spec corev1.PodSpec, c *corev1.Container, dir string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if m.MountPath == dir && volume(spec, m.Name) != nil {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func mountOfVolume(c *corev1.Container, name string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if m.Name == name {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func containerPort(c *corev1.Container, name string) *corev1.ContainerPort {
	for i := range c.Ports {
		if c.Ports[i].Name == name {
			return &c.Ports[i]
		}
	}
	return nil
}

// podPort is the container port named name in any container of the pod.
func podPort(spec corev1.PodSpec, name string) *corev1.ContainerPort {
	for i := range spec.Containers {
		if p := containerPort(&spec.Containers[i], name); p != nil {
			return p
		}
	}
	return nil
}

// resolvePort is the number of a port given by number or by name; 0 if the
// name is no port of c.
func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	if cp := containerPort(c, p.StrVal); cp != nil {
		return cp.ContainerPort
	}
	return 0
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q: %v", addr, err)
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil || n == 0 {
		t.Fatalf("%q: the port must be fixed for the manifests to name it", addr)
	}
	return int32(n)
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// parseGoMemLimit reads GOMEMLIMIT as the Go runtime does: bytes, or a
// number with B, KiB, MiB, GiB or TiB.
func parseGoMemLimit(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("not set: the Go runtime would let the heap grow to limits.memory and the container be killed")
	}
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%q: %v", s, err)
			}
			return v * u.mult, nil
		}
	}
	return 0, fmt.Errorf("%q: not a size", s)
}

func firstNonNil[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}
