# secret-rotator event mode: an EventBridge rule sending ECS "ECS Deployment State
# Change" events to an SQS queue that one secret-rotator replica long-polls
# ([events] queue_url). One instance of this module per replica: a message deleted by
# one replica is never seen by another (see README.md). The same resources as
# cloudformation.yaml.

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "name" {
  description = "Name of the queue and the rule."
  type        = string
  default     = "secret-rotator-ecs-deployments"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.name))
    error_message = "name: letters, digits, - and _, at most 64 characters."
  }
}

variable "cluster_names" {
  description = "ECS cluster names whose services' deployment events are sent; empty: every cluster of this account and region."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.cluster_names : can(regex("^[A-Za-z0-9_-]{1,255}$", c))])
    error_message = "cluster_names: cluster names (not ARNs): letters, digits, - and _."
  }
}

variable "message_retention_seconds" {
  description = "How long an unread event is kept; a day outlasts any rollout the rotator waits for."
  type        = number
  default     = 86400
  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds: 60 to 1209600 (14 days)."
  }
}

variable "tags" {
  description = "Tags for the queue and the rule."
  type        = map(string)
  default     = {}
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # The events name the service ARN (...:service/CLUSTER/NAME) in `resources`.
  service_arn_prefix = "arn:${data.aws_partition.current.partition}:ecs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:service/"
  event_pattern = merge(
    {
      source        = ["aws.ecs"]
      "detail-type" = ["ECS Deployment State Change"]
    },
    length(var.cluster_names) == 0 ? {} : {
      resources = [for c in var.cluster_names : { prefix = "${local.service_arn_prefix}${c}/" }]
    },
  )
}

resource "aws_sqs_queue" "events" {
  name = var.name
  # SSE-SQS: encrypted at rest, and EventBridge can send to it without a KMS key policy
  # (the AWS-managed aws/sqs KMS key would refuse events.amazonaws.com).
  sqs_managed_sse_enabled    = true
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20
  visibility_timeout_seconds = 30
  tags                       = var.tags
}

resource "aws_cloudwatch_event_rule" "ecs_deployments" {
  name          = var.name
  description   = "ECS deployment state changes for secret-rotator"
  event_pattern = jsonencode(local.event_pattern)
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "queue" {
  rule      = aws_cloudwatch_event_rule.ecs_deployments.name
  target_id = "secret-rotator-queue"
  arn       = aws_sqs_queue.events.arn
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "EventBridgeRuleSends"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.events.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    # Only this rule: no other rule (or account) can write into the queue.
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.ecs_deployments.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  queue_url = aws_sqs_queue.events.id
  policy    = data.aws_iam_policy_document.queue.json
}

output "queue_url" {
  description = "[events] queue_url of the replica that reads this queue."
  value       = aws_sqs_queue.events.id
}

output "queue_arn" {
  description = "The Resource of the replica's sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes grant."
  value       = aws_sqs_queue.events.arn
}

output "rule_arn" {
  value = aws_cloudwatch_event_rule.ecs_deployments.arn
}
