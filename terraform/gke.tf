# A private GKE cluster: nodes without public addresses, a private control plane reachable from
# var.master_authorized_cidrs, workload identity, Dataplane V2 (network policy), shielded nodes.
locals {
  location = coalesce(var.zone, var.region)
  labels = {
    app         = "playlog"
    environment = var.environment
  }
}

resource "google_container_cluster" "playlog" {
  #checkov:skip=CKV_GCP_65:Google Groups for RBAC needs a Workspace domain; access is granted by IAM roles instead.
  #checkov:skip=CKV_GCP_66:Binary Authorization needs an attestor pipeline; images are pinned by digest (var.playlog_image) instead.
  #checkov:skip=CKV_GCP_24:PodSecurityPolicy was removed from Kubernetes in 1.25; Pod Security Admission labels the playlog namespace.
  #checkov:skip=CKV_GCP_12:Dataplane V2 (datapath_provider = ADVANCED_DATAPATH) enforces network policy itself; the legacy network_policy block must stay off with it.
  #checkov:skip=CKV_GCP_13:Client certificates are disabled by default since GKE 1.12; there is no such block to set.
  name     = "playlog-${var.environment}"
  location = local.location

  network         = google_compute_network.playlog.id
  subnetwork      = google_compute_subnetwork.playlog.id
  networking_mode = "VPC_NATIVE"

  # Node pools are managed below, so that they can change without recreating the cluster.
  remove_default_node_pool = true
  initial_node_count       = 1

  deletion_protection = var.deletion_protection
  resource_labels     = local.labels

  release_channel {
    channel = "REGULAR"
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = var.master_cidr
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_cidrs
      content {
        display_name = cidr_blocks.value.name
        cidr_block   = cidr_blocks.value.cidr
      }
    }
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  datapath_provider = "ADVANCED_DATAPATH"

  enable_shielded_nodes       = true
  enable_intranode_visibility = true

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  node_config {
    # Only for the default pool, removed at once; the real pools are below.
    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  logging_service    = "logging.googleapis.com/kubernetes"
  monitoring_service = "monitoring.googleapis.com/kubernetes"

  maintenance_policy {
    recurring_window {
      start_time = "2026-01-03T02:00:00Z"
      end_time   = "2026-01-03T06:00:00Z"
      recurrence = "FREQ=WEEKLY;BYDAY=SA,SU"
    }
  }
}

resource "google_service_account" "nodes" {
  account_id   = "playlog-nodes-${var.environment}"
  display_name = "Playlog GKE nodes (${var.environment})"
}

# What nodes need, and nothing more: write logs and metrics, read images.
resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

locals {
  node_pools = {
    system   = var.system_pool
    workload = var.workload_pool
  }
}

resource "google_container_node_pool" "pools" {
  for_each = local.node_pools
  name     = each.key
  cluster  = google_container_cluster.playlog.id
  location = local.location

  autoscaling {
    min_node_count = each.value.min_nodes
    max_node_count = each.value.max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = each.value.machine_type
    disk_size_gb    = each.value.disk_gb
    disk_type       = "pd-balanced"
    image_type      = "COS_CONTAINERD"
    spot            = each.value.spot
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    labels          = merge(local.labels, { pool = each.key })
    resource_labels = local.labels

    metadata = {
      disable-legacy-endpoints = "true"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}
