//! TODO(kubeconfig): filled in by its owner.
