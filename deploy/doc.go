// Package deploy holds no code: the folder holds the production
// deployment files of instant (NATS cluster, Centrifugo, systemd,
// Kubernetes, docker-compose), and this package's tests check each of them
// with the real tool that reads it.
package deploy
