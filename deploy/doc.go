// Package deploy holds the files that run OBO Gateway on Kubernetes, and the
// tests that keep them honest; it has no Go code of its own.
//
//   - gateway.example.yaml: a configuration file with every setting, the
//     reference docs/configuration.md describes. A value that must be the
//     reader's own is a <placeholder> that fails validation, naming its
//     setting, until replaced; optional features are commented out.
//   - gateway.local.yaml: a complete configuration for the local tenant
//     (cmd/fakeentra started as the README says), nothing to replace.
//   - base/: Kustomize manifests for the gateway: Deployment, Services,
//     ServiceAccount, PodDisruptionBudget, HorizontalPodAutoscaler,
//     NetworkPolicy, ServiceMonitor, and its configuration (base/gateway.yaml)
//     as a generated ConfigMap.
//   - overlays/redis/: the base plus a Redis shared by the replicas as their
//     token cache.
//   - grafana/ and prometheus/: the dashboard and the alerting rules
//     (docs/operations.md).
//
// example_test.go checks that each placeholder of gateway.example.yaml fails
// with a message naming its setting and that nothing else does, that every
// setting appears in it (set, or commented out and valid once turned on,
// limits at their defaults), and that the README quotes its messages as
// they are; cmd/fakeentra's TestLocalExample runs gateway.local.yaml as the
// README does.
//
// docs/kubernetes.md explains how to deploy them. manifests_test.go renders
// each kustomization in-process, decodes every object strictly into its
// Kubernetes API type, loads the rendered configuration with the gateway's
// own loader and checks the security and wiring properties the
// documentation promises (non-root, read-only root filesystem, probes on the
// admin port, Services that reach named container ports, a ServiceMonitor
// that selects the metrics Service, NetworkPolicies that admit /metrics only
// from the monitoring namespace).
package deploy
