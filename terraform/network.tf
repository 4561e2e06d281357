# A VPC of its own, one subnet with secondary ranges for pods and services (VPC-native), and Cloud NAT so
# that private nodes can pull images and reach Google APIs.
resource "google_compute_network" "playlog" {
  name                    = "playlog-${var.environment}"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "playlog" {
  name                     = "playlog-${var.environment}"
  network                  = google_compute_network.playlog.id
  region                   = var.region
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }
  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "playlog" {
  name    = "playlog-${var.environment}"
  network = google_compute_network.playlog.id
  region  = var.region
}

resource "google_compute_router_nat" "playlog" {
  name                               = "playlog-${var.environment}"
  router                             = google_compute_router.playlog.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# Traffic inside the VPC (nodes, pods, services) is allowed; nothing from outside is. GKE adds its own rules
# for the control plane to reach the nodes.
resource "google_compute_firewall" "internal" {
  name      = "playlog-${var.environment}-internal"
  network   = google_compute_network.playlog.id
  direction = "INGRESS"
  priority  = 1000

  source_ranges = [var.subnet_cidr, var.pods_cidr, var.services_cidr]

  allow {
    protocol = "tcp"
  }
  allow {
    protocol = "udp"
  }
  allow {
    protocol = "icmp"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
