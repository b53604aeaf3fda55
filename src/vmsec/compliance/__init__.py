"""Compliance views: framework requirements mapped to vmsec checks (see docs/compliance.md)."""

from vmsec.compliance.frameworks import (
    ComplianceResult,
    Coverage,
    Framework,
    ReqStatus,
    Requirement,
    RequirementResult,
    available,
    evaluate,
    load_framework,
)

__all__ = ["ComplianceResult", "Coverage", "Framework", "ReqStatus", "Requirement", "RequirementResult",
           "available", "evaluate", "load_framework"]
