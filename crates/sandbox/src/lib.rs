//! An embedded Kubernetes API server whose pods are local processes.
