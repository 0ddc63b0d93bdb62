package deploy_test

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/instanthq/instant/monitor"
)

// kustomization lists the manifests; it is kustomize's file, not a
// Kubernetes object.
const kustomization = "kustomization.yaml"

// k8sKinds are the kinds the manifests may hold, with their apiVersion
// and a new value of their Go type.
var k8sKinds = map[string]struct {
	apiVersion string
	new        func() any
}{
	"Namespace":             {"v1", func() any { return &corev1.Namespace{} }},
	"ConfigMap":             {"v1", func() any { return &corev1.ConfigMap{} }},
	"Secret":                {"v1", func() any { return &corev1.Secret{} }},
	"Service":               {"v1", func() any { return &corev1.Service{} }},
	"Deployment":            {"apps/v1", func() any { return &appsv1.Deployment{} }},
	"PodDisruptionBudget":   {"policy/v1", func() any { return &policyv1.PodDisruptionBudget{} }},
	"NetworkPolicy":         {"networking.k8s.io/v1", func() any { return &networkingv1.NetworkPolicy{} }},
	"CronJob":               {"batch/v1", func() any { return &batchv1.CronJob{} }},
	"PersistentVolumeClaim": {"v1", func() any { return &corev1.PersistentVolumeClaim{} }},
}

// secretExample holds the example Secrets, kept out of the kustomization.
const secretExample = "secret.example.yaml"

// manifests holds the decoded objects of kubernetes/.
type manifests struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	policies    []*networkingv1.NetworkPolicy
	cronJobs    []*batchv1.CronJob
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	files       []string // the manifest files, sorted, without kustomization.yaml
	count       int      // documents decoded, secrets excluded
}

// loadManifests decodes every document of kubernetes/*.yaml strictly into
// its Kubernetes type: an unknown kind, apiVersion or field fails the test.
// The ConfigMap "instant" is the one kustomization.yaml generates from
// instant.env.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, file := range files {
		if filepath.Base(file) == kustomization {
			continue
		}
		m.files = append(m.files, filepath.Base(file))
		for i, doc := range splitYAML(readFile(t, file)) {
			m.add(t, file+" #"+strconv.Itoa(i+1), doc)
		}
	}
	m.configMaps["instant"] = &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "instant", Namespace: "instant"},
		Data:       parseEnvFile(t, filepath.Join("kubernetes", "instant.env")),
	}
	return m
}

func (m *manifests) add(t *testing.T, where string, doc []byte) {
	t.Helper()
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	kind, ok := k8sKinds[meta.Kind]
	if !ok {
		t.Fatalf("%s: unexpected kind %q", where, meta.Kind)
	}
	if meta.APIVersion != kind.apiVersion {
		t.Errorf("%s: %s has apiVersion %q, want %q", where, meta.Kind, meta.APIVersion, kind.apiVersion)
	}
	obj := kind.new()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: %s: %v", where, meta.Kind, err)
	}
	if meta.Kind != "Secret" {
		m.count++
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		m.deployments = append(m.deployments, o)
	case *corev1.Service:
		m.services = append(m.services, o)
	case *policyv1.PodDisruptionBudget:
		m.pdbs = append(m.pdbs, o)
	case *corev1.ConfigMap:
		m.configMaps[o.Name] = o
	case *corev1.Secret:
		m.secrets[o.Name] = o
	case *networkingv1.NetworkPolicy:
		m.policies = append(m.policies, o)
	case *batchv1.CronJob:
		m.cronJobs = append(m.cronJobs, o)
	}
}

// splitYAML splits a multi-document YAML file at its "---" lines, dropping
// documents holding only comments.
func splitYAML(s string) [][]byte {
	var docs [][]byte
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(s, -1) {
		if regexp.MustCompile(`(?m)^[^#\s]`).MatchString(doc) {
			docs = append(docs, []byte(doc))
		}
	}
	return docs
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	if len(m.deployments) != 2 {
		t.Fatalf("got %d Deployments, want bridge and auth", len(m.deployments))
	}
	// The strict decode means something: a misspelt field fails it.
	bad := []byte(strings.Replace(readFile(t, "kubernetes/bridge.yaml"), "readinessProbe:", "readynessProbe:", 1))
	if err := yaml.UnmarshalStrict(splitYAML(string(bad))[0], &appsv1.Deployment{}); err == nil {
		t.Error("UnmarshalStrict accepted a Deployment with an unknown field")
	}
}

// TestKubernetesDeployments checks what the API server would accept but
// an operator would regret.
func TestKubernetesDeployments(t *testing.T) {
	m := loadManifests(t)
	for _, d := range m.deployments {
		t.Run(d.Name, func(t *testing.T) {
			spec := d.Spec.Template.Spec
			selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			podLabels := labels.Set(d.Spec.Template.Labels)
			if !selector.Matches(podLabels) {
				t.Errorf("selector %v does not match the pod labels %v", selector, podLabels)
			}
			if len(spec.Containers) != 1 {
				t.Fatalf("got %d containers, want 1", len(spec.Containers))
			}
			c := spec.Containers[0]
			env := m.containerEnv(t, c)
			checkProbes(t, c, env)
			checkResources(t, c)
			checkSecurity(t, spec, c)
			checkGracePeriod(t, spec, env)
			if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
				t.Errorf("replicas = %v, want at least 2", d.Spec.Replicas)
			}
			if !m.pdbSelects(t, podLabels) {
				t.Errorf("no PodDisruptionBudget selects the pods %v", podLabels)
			}
			if a := spec.AutomountServiceAccountToken; a == nil || *a {
				t.Error("automountServiceAccountToken is not false: instant needs no Kubernetes API access")
			}
		})
	}
}

// containerEnv returns the variables the container gets from its envFrom
// ConfigMaps and Secrets (which must exist) and env; its command (args[0])
// is under the key "command".
func (m *manifests) containerEnv(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := m.configMaps[from.ConfigMapRef.Name]
			if !ok {
				t.Fatalf("envFrom ConfigMap %q is not in the manifests", from.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[k] = v
			}
		case from.SecretRef != nil:
			s, ok := m.secrets[from.SecretRef.Name]
			if !ok {
				t.Fatalf("envFrom Secret %q is not in the manifests", from.SecretRef.Name)
			}
			for k, v := range s.StringData {
				env[k] = v
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if len(c.Args) != 1 {
		t.Fatalf("args = %q, want the one command bridge or auth", c.Args)
	}
	env["command"] = c.Args[0]
	return env
}

// checkProbes checks that liveness hits /healthz and readiness /readyz on
// the port the command serves them on (INSTANT_METRICS_ADDR for bridge,
// INSTANT_AUTH_ADDR for auth).
func checkProbes(t *testing.T, c corev1.Container, env map[string]string) {
	t.Helper()
	setting := map[string]string{"bridge": "INSTANT_METRICS_ADDR", "auth": "INSTANT_AUTH_ADDR"}[env["command"]]
	if setting == "" {
		t.Fatalf("command %q, want bridge or auth", env["command"])
	}
	_, portStr, err := net.SplitHostPort(env[setting])
	if err != nil {
		t.Fatalf("%s = %q: %v", setting, env[setting], err)
	}
	want, _ := strconv.Atoi(portStr)
	for _, p := range []struct {
		name, path string
		probe      *corev1.Probe
	}{{"livenessProbe", "/healthz", c.LivenessProbe}, {"readinessProbe", "/readyz", c.ReadinessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: missing or not httpGet", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s path = %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := containerPort(t, c, p.probe.HTTPGet.Port); got != want {
			t.Errorf("%s port = %d, want %d (%s)", p.name, got, want, setting)
		}
	}
}

// containerPort resolves a numeric or named port of c.
func containerPort(t *testing.T, c corev1.Container, port intstr.IntOrString) int {
	t.Helper()
	if port.Type == intstr.Int {
		return port.IntValue()
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort)
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, port.StrVal)
	return 0
}

func checkResources(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[r]
		limit, hasLimit := c.Resources.Limits[r]
		if !hasReq || !hasLimit {
			t.Errorf("%s: request and limit both required, got request %v, limit %v", r, c.Resources.Requests, c.Resources.Limits)
			continue
		}
		if req.Cmp(limit) > 0 {
			t.Errorf("%s request %s above its limit %s", r, req.String(), limit.String())
		}
	}
}

func checkSecurity(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod securityContext must set runAsNonRoot and a non-zero runAsUser")
	}
	if sc == nil {
		t.Fatal("container securityContext missing")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.Capabilities == nil || len(sc.Capabilities.Add) > 0 || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("capabilities = %+v, want drop [ALL] and nothing added", sc.Capabilities)
	}
}

// checkGracePeriod checks that Kubernetes waits longer than the bridge's
// INSTANT_SHUTDOWN_TIMEOUT before killing a pod.
func checkGracePeriod(t *testing.T, pod corev1.PodSpec, env map[string]string) {
	t.Helper()
	shutdown := 10 * time.Second
	if v, ok := env["INSTANT_SHUTDOWN_TIMEOUT"]; ok {
		var err error
		if shutdown, err = time.ParseDuration(v); err != nil {
			t.Fatalf("INSTANT_SHUTDOWN_TIMEOUT: %v", err)
		}
	}
	grace := 30 * time.Second // Kubernetes' default
	if pod.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	}
	if grace <= shutdown {
		t.Errorf("terminationGracePeriodSeconds %v is not above INSTANT_SHUTDOWN_TIMEOUT %v", grace, shutdown)
	}
}

// pdbSelects reports whether a PodDisruptionBudget selects pods with
// podLabels.
func (m *manifests) pdbSelects(t *testing.T, podLabels labels.Set) bool {
	t.Helper()
	for _, p := range m.pdbs {
		s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Empty() && s.Matches(podLabels) {
			return true
		}
	}
	return false
}

// TestKubernetesServices checks that every Service selects a Deployment's
// pods and targets a port the container serves.
func TestKubernetesServices(t *testing.T) {
	m := loadManifests(t)
	if len(m.services) == 0 {
		t.Fatal("no Service: auth needs one")
	}
	for _, s := range m.services {
		var target *corev1.Container
		for _, d := range m.deployments {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				target = &d.Spec.Template.Spec.Containers[0]
			}
		}
		if len(s.Spec.Selector) == 0 || target == nil {
			t.Errorf("Service %s selects no Deployment's pods (selector %v)", s.Name, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			port := containerPort(t, *target, p.TargetPort)
			found := false
			for _, cp := range target.Ports {
				found = found || int(cp.ContainerPort) == port
			}
			if !found {
				t.Errorf("Service %s port %s targets %d, which container %s does not declare", s.Name, p.Name, port, target.Name)
			}
		}
	}
}

// TestKubernetesSecretsArePlaceholders keeps real-looking secrets out of
// the examples.
func TestKubernetesSecretsArePlaceholders(t *testing.T) {
	m := loadManifests(t)
	if len(m.secrets) == 0 {
		t.Fatal("no Secret example")
	}
	for _, s := range m.secrets {
		if len(s.Data) > 0 {
			t.Errorf("Secret %s: use stringData with visible placeholders, not data", s.Name)
		}
		for k, v := range s.StringData {
			if !strings.Contains(v, "change-me") {
				t.Errorf("Secret %s: %s = %q is not a change-me placeholder", s.Name, k, v)
			}
		}
	}
}

// TestKubernetesKustomization checks that the kustomization lists every
// manifest but the example Secrets, and that what kubectl builds from it
// (offline) holds no Secret (an apply would overwrite the real ones), a
// ConfigMap whose name carries a hash of instant.env that the Deployments
// use (a change rolls them), and pinned images.
func TestKubernetesKustomization(t *testing.T) {
	m := loadManifests(t)
	var k struct {
		APIVersion         string   `json:"apiVersion"`
		Kind               string   `json:"kind"`
		Resources          []string `json:"resources"`
		ConfigMapGenerator []struct {
			Name      string   `json:"name"`
			Namespace string   `json:"namespace"`
			Envs      []string `json:"envs"`
			Options   any      `json:"options"`
		} `json:"configMapGenerator"`
		Images []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.UnmarshalStrict([]byte(readFile(t, filepath.Join("kubernetes", kustomization))), &k); err != nil {
		t.Fatal(err)
	}
	want := slices.DeleteFunc(slices.Clone(m.files), func(f string) bool { return f == secretExample })
	if !slices.Equal(slices.Sorted(slices.Values(k.Resources)), want) {
		t.Errorf("kustomization resources %v, want every manifest but %s: %v", k.Resources, secretExample, want)
	}
	if len(k.Images) != 1 || k.Images[0].Name != "instant" || k.Images[0].NewTag == "" || k.Images[0].NewTag == "latest" {
		t.Errorf("images %+v, want instant with a pinned tag", k.Images)
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; the strict decode above is the schema check")
	}
	out, err := exec.Command(kubectl, "kustomize", "kubernetes").Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	docs := splitYAML(string(out))
	if got := len(docs); got != m.count+1 { // + the generated ConfigMap
		t.Errorf("kubectl kustomize built %d objects, want %d", got, m.count+1)
	}
	var configMap string
	var used []string
	for _, doc := range docs {
		var obj struct {
			metav1.TypeMeta   `json:",inline"`
			metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "Secret":
			t.Errorf("kubectl kustomize output holds the Secret %s: an apply would overwrite the real one", obj.Name)
		case "ConfigMap":
			configMap = obj.Name
		case "Deployment":
			var d appsv1.Deployment
			if err := yaml.Unmarshal(doc, &d); err != nil {
				t.Fatal(err)
			}
			c := d.Spec.Template.Spec.Containers[0]
			if strings.HasSuffix(c.Image, ":latest") || !strings.Contains(c.Image, ":") {
				t.Errorf("%s runs %q, want a pinned tag", d.Name, c.Image)
			}
			for _, from := range c.EnvFrom {
				if from.ConfigMapRef != nil {
					used = append(used, from.ConfigMapRef.Name)
				}
			}
		}
	}
	if !regexp.MustCompile(`^instant-[a-z0-9]{10}$`).MatchString(configMap) {
		t.Errorf("generated ConfigMap %q, want instant-<hash of instant.env>", configMap)
	}
	if len(used) != 2 || used[0] != configMap || used[1] != configMap {
		t.Errorf("the Deployments use the ConfigMaps %v, want %s twice", used, configMap)
	}
}

// TestKubernetesKubectlDryRun runs kubectl's client-side dry run on every
// manifest where kubectl can do it offline.
func TestKubernetesKubectlDryRun(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; the strict decode is the schema check")
	}
	// No kubeconfig and an address nobody listens on: kubectl must never
	// reach a real cluster from a test.
	dryRun := exec.Command(kubectl, "create", "--dry-run=client", "--validate=false", "-o", "yaml",
		"--server", "http://127.0.0.1:1", "-k", "kubernetes")
	dryRun.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(t.TempDir(), "none"))
	out, err := dryRun.CombinedOutput()
	if err != nil && strings.Contains(string(out), "127.0.0.1:1") {
		t.Skipf("this kubectl needs an API server for discovery even in a client-side dry run: %s", lastLines(string(out), 1))
	}
	if err != nil {
		t.Fatalf("kubectl create --dry-run=client: %v\n%s", err, out)
	}
}

// TestKubernetesProbesAndShutdown checks that the probes wait longer than
// the readiness checks' own bound and that auth leaves its Service before
// it stops.
func TestKubernetesProbesAndShutdown(t *testing.T) {
	for _, d := range loadManifests(t).deployments {
		c := d.Spec.Template.Spec.Containers[0]
		for name, p := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
			if p == nil || time.Duration(p.TimeoutSeconds)*time.Second <= monitor.CheckTimeout {
				t.Errorf("%s %s: timeoutSeconds not above the readiness checks' %v", d.Name, name, monitor.CheckTimeout)
			}
		}
		if slices.Equal(c.Args, []string{"auth"}) {
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
				t.Errorf("%s: no preStop sleep: the pod would stop before the Service forgets it", d.Name)
			}
		}
	}
}

// TestKubernetesNetworkPolicies checks that a default deny covers every
// pod and that each container port is opened to someone by a policy
// selecting its pods.
func TestKubernetesNetworkPolicies(t *testing.T) {
	m := loadManifests(t)
	deny := false
	for _, p := range m.policies {
		deny = deny || (len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 &&
			slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) && slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress))
	}
	if !deny {
		t.Error("no default-deny NetworkPolicy (empty pod selector, Ingress and Egress, no rule)")
	}
	for _, d := range m.deployments {
		c := d.Spec.Template.Spec.Containers[0]
		for _, port := range c.Ports {
			open := false
			for _, p := range m.policies {
				s, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
				if err != nil {
					t.Fatal(err)
				}
				if !s.Matches(labels.Set(d.Spec.Template.Labels)) {
					continue
				}
				for _, rule := range p.Spec.Ingress {
					for _, rp := range rule.Ports {
						open = open || (rp.Port != nil && rp.Port.IntValue() == int(port.ContainerPort))
					}
				}
			}
			if !open {
				t.Errorf("%s: no NetworkPolicy lets anyone reach port %d", d.Name, port.ContainerPort)
			}
		}
	}
}

// TestNATSHelmValues checks the values for the official NATS chart: a
// 3-node JetStream cluster whose config includes accounts.conf from a
// mounted Secret, and Secrets whose NATS_URL names the chart's client
// Service.
func TestNATSHelmValues(t *testing.T) {
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool
				Replicas int
			}
			Jetstream struct{ Enabled bool }
			Merge     map[string]any
		}
		Container struct {
			Image struct{ Tag string }
			Patch []struct {
				Op, Path string
				Value    corev1.VolumeMount
			}
		}
		PodTemplate struct {
			Patch []struct {
				Op, Path string
				Value    corev1.Volume
			}
		} `json:"podTemplate"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "nats/helm-values.yaml")), &v); err != nil {
		t.Fatal(err)
	}
	if !v.Config.Cluster.Enabled || v.Config.Cluster.Replicas != 3 || !v.Config.Jetstream.Enabled {
		t.Errorf("config %+v, want a 3-node cluster with JetStream", v.Config)
	}
	include, _ := v.Config.Merge["$include"].(string)
	if len(v.Container.Patch) != 1 || len(v.PodTemplate.Patch) != 1 {
		t.Fatalf("want one volume and its mount, got %+v and %+v", v.Container.Patch, v.PodTemplate.Patch)
	}
	mount, vol := v.Container.Patch[0].Value, v.PodTemplate.Patch[0].Value
	// The chart's config is /etc/nats-config/nats.conf: includes are
	// relative to it.
	if filepath.Join("/etc/nats-config", include) != filepath.Join(mount.MountPath, "accounts.conf") ||
		mount.Name != vol.Name || vol.Secret == nil {
		t.Errorf("$include %q, mount %+v, volume %+v: want accounts.conf from a mounted Secret", include, mount, vol)
	}
	if want := "2.15.2-alpine"; v.Container.Image.Tag != want {
		t.Errorf("image tag %q, want %q (the nats-server the tests run)", v.Container.Image.Tag, want)
	}
	for name, s := range loadManifests(t).secrets {
		u, err := url.Parse(s.StringData["NATS_URL"])
		if err != nil || u.Host != "nats.nats.svc:4222" {
			t.Errorf("Secret %s: NATS_URL host %q, want the chart's Service nats.nats.svc:4222", name, u.Host)
		}
	}
}
