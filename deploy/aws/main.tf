# A c8g.2xlarge running Tessera in a cluster placement group, with optional
# load-generator clients in the same group (lowest latency between them).
#
#   cd deploy/aws
#   terraform init
#   terraform apply -var key_name=my-key -var subnet_id=subnet-0123 \
#     -var tessera_binary_url=https://example.com/tessera-server-aarch64
#
# The instance boots Amazon Linux 2023 (arm64); cloud-init installs the
# binary, the systemd unit and the host tuning, then starts the service. See
# deploy/README.md.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "subnet_id" {
  type        = string
  description = "Subnet for all instances (a cluster placement group lives in one AZ)."
}

variable "key_name" {
  type        = string
  description = "EC2 key pair for SSH."
}

variable "tessera_binary_url" {
  type        = string
  description = "HTTPS URL of a tessera-server binary built for aarch64-unknown-linux-gnu."
}

variable "client_cidr" {
  type        = string
  default     = "10.0.0.0/8"
  description = "Who may connect to port 6379."
}

variable "ssh_cidr" {
  type    = string
  default = "10.0.0.0/8"
}

variable "client_count" {
  type        = number
  default     = 1
  description = "Load-generator instances in the same placement group (0 for none)."
}

variable "planner_args" {
  type        = string
  default     = "--irq-cores=auto"
  description = "The affinity planner's flags (2 IRQ cores + 6 shards on a c8g.2xlarge)."
}

data "aws_subnet" "selected" {
  id = var.subnet_id
}

data "aws_ssm_parameter" "al2023_arm64" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
}

resource "aws_placement_group" "tessera" {
  name     = "tessera"
  strategy = "cluster"
}

resource "aws_security_group" "tessera" {
  name_prefix = "tessera-"
  vpc_id      = data.aws_subnet.selected.vpc_id

  ingress {
    description = "RESP clients"
    from_port   = 6379
    to_port     = 6379
    protocol    = "tcp"
    cidr_blocks = [var.client_cidr]
  }

  ingress {
    description = "SSH"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.ssh_cidr]
  }

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "server" {
  ami                    = data.aws_ssm_parameter.al2023_arm64.value
  instance_type          = "c8g.2xlarge"
  placement_group        = aws_placement_group.tessera.id
  subnet_id              = var.subnet_id
  vpc_security_group_ids = [aws_security_group.tessera.id]
  key_name               = var.key_name

  user_data = templatefile("${path.module}/cloud-init.yaml.tftpl", {
    tessera_binary_url = var.tessera_binary_url
    planner_args       = var.planner_args
    unit               = file("${path.module}/../systemd/tessera.service")
    tune_host          = file("${path.module}/../tune-host.sh")
  })
  user_data_replace_on_change = true

  metadata_options {
    http_tokens = "required"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 20
  }

  tags = {
    Name = "tessera-server"
  }
}

resource "aws_instance" "client" {
  count                  = var.client_count
  ami                    = data.aws_ssm_parameter.al2023_arm64.value
  instance_type          = "c8g.2xlarge"
  placement_group        = aws_placement_group.tessera.id
  subnet_id              = var.subnet_id
  vpc_security_group_ids = [aws_security_group.tessera.id]
  key_name               = var.key_name

  metadata_options {
    http_tokens = "required"
  }

  tags = {
    Name = "tessera-client-${count.index}"
  }
}

output "server_private_ip" {
  value = aws_instance.server.private_ip
}

output "client_private_ips" {
  value = aws_instance.client[*].private_ip
}
