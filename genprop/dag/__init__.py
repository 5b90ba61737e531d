"""The DAG from raw videos to report, as pure data: the stage list, config hashes, completion markers.

Running it (a local Ray runtime, or Ray Jobs on a cluster) lives in ``pipelines/dag.py``; this package
never imports Ray, so the plan can be computed and tested anywhere.
"""

from genprop.dag.cases import cases_manifest
from genprop.dag.config import DagConfig, Deployment, load_deployment
from genprop.dag.markers import StageState, clear_output, read_state, write_state
from genprop.dag.plan import PlannedStage, plan_stages
from genprop.dag.runner import run_dag
from genprop.dag.stages import STAGES, Stage, select

__all__ = ["STAGES", "DagConfig", "Deployment", "PlannedStage", "Stage", "StageState", "cases_manifest",
           "clear_output", "load_deployment", "plan_stages", "read_state", "run_dag", "select", "write_state"]
