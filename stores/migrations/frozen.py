"""The store's schema as the workbench wrote it before alembic: revisions build and repair from it.

Frozen on purpose: revisions must keep producing the same tables whatever the models say later.
Version 1 kept file texts in a `blobs` table of the store with foreign keys to it from `commits`;
version 2 keeps them in their own file (SQLite, the `texts` schema) and drops those keys.
"""

from __future__ import annotations

import sqlalchemy as sa


def store_schema(version: int, *, blobs_schema: str | None = None) -> sa.MetaData:
    """Tables and indexes of store `version` (1 or 2); `blobs_schema` is where version 2 keeps texts."""
    if version not in (1, 2):
        raise ValueError(f"no frozen schema for store version {version}")
    metadata = sa.MetaData()
    blob_keys = (
        [sa.ForeignKeyConstraint(["new_blob"], ["blobs.sha"]), sa.ForeignKeyConstraint(["old_blob"], ["blobs.sha"])]
        if version == 1
        else []
    )
    blobs_schema = blobs_schema if version == 2 else None
    sa.Table(
        "blobs",
        metadata,
        sa.Column("sha", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sha"),
        schema=blobs_schema,
    )
    sa.Table(
        "instructions",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=True),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("content_hash"),
    )
    sa.Table(
        "jobs",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(), nullable=True),
        sa.Column("log_path", sa.String(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Index("ix_jobs_kind", metadata.tables["jobs"].c.kind)
    sa.Index("ix_jobs_state", metadata.tables["jobs"].c.state)
    sa.Table(
        "llm_cache",
        metadata,
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("prompt_version", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("finish_reason", sa.String(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    sa.Table(
        "repositories",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("license", sa.String(), nullable=True),
        sa.Column("head_sha", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    sa.Table(
        "review_actions",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("pair_count", sa.Integer(), nullable=False),
        sa.Column("before_json", sa.Text(), nullable=False),
        sa.Column("undone", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Table(
        "checkpoints",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("problems", sa.Text(), nullable=False),
        sa.Column("lineage_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Index("ix_checkpoints_kind", metadata.tables["checkpoints"].c.kind)
    sa.Index("ix_checkpoints_path", metadata.tables["checkpoints"].c.path)
    sa.Table(
        "commits",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("sha", sa.String(), nullable=False),
        sa.Column("parent_sha", sa.String(), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("author_email", sa.String(), nullable=False),
        sa.Column("authored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("old_path", sa.String(), nullable=False),
        sa.Column("old_blob", sa.String(), nullable=False),
        sa.Column("new_blob", sa.String(), nullable=False),
        sa.Column("content_key", sa.String(), nullable=False),
        sa.Column("lines_added", sa.Integer(), nullable=False),
        sa.Column("lines_removed", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        *blob_keys,
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository_id", "sha", "path", name="uq_commit_file"),
    )
    sa.Index("ix_commits_content_key", metadata.tables["commits"].c.content_key)
    sa.Index("ix_commits_language", metadata.tables["commits"].c.language)
    sa.Index("ix_commits_path", metadata.tables["commits"].c.path)
    sa.Index("ix_commits_repo_id", metadata.tables["commits"].c.repository_id, metadata.tables["commits"].c.id)
    sa.Index("ix_commits_sha", metadata.tables["commits"].c.sha)
    sa.Table(
        "eval_runs",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("judge_spec", sa.String(), nullable=False),
        sa.Column("judge_kind", sa.String(), nullable=False),
        sa.Column("bench_dir", sa.String(), nullable=False),
        sa.Column("bench_version", sa.String(), nullable=False),
        sa.Column("objectives_json", sa.Text(), nullable=False),
        sa.Column("orders", sa.String(), nullable=False),
        sa.Column("task_limit", sa.Integer(), nullable=True),
        sa.Column("strip_comments", sa.Boolean(), nullable=True),
        sa.Column("lineage_json", sa.Text(), nullable=False),
        sa.Column("parser_version", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("objective_totals_json", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Index("ix_eval_runs_bench_version", metadata.tables["eval_runs"].c.bench_version)
    sa.Index("ix_eval_runs_judge_kind", metadata.tables["eval_runs"].c.judge_kind)
    sa.Index("ix_eval_runs_state", metadata.tables["eval_runs"].c.state)
    sa.Table(
        "exports",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("out_dir", sa.String(), nullable=False),
        sa.Column("formats", sa.String(), nullable=False),
        sa.Column("filter_json", sa.Text(), nullable=False),
        sa.Column("pair_ids_hash", sa.String(), nullable=False),
        sa.Column("pair_count", sa.Integer(), nullable=False),
        sa.Column("manifest_json", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Table(
        "llm_servers",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("base_url", sa.String(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("log_path", sa.String(), nullable=False),
        sa.Column("command_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Table(
        "synth_items",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("config_key", sa.String(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("pair_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("config_key", "subject_id", name="uq_synth_item"),
    )
    sa.Index(
        "ix_synth_items_claim",
        metadata.tables["synth_items"].c.config_key,
        metadata.tables["synth_items"].c.state,
        metadata.tables["synth_items"].c.id,
    )
    sa.Table(
        "train_runs",
        metadata,
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("recipe_path", sa.String(), nullable=False),
        sa.Column("recipe_json", sa.Text(), nullable=False),
        sa.Column("run_dir", sa.String(), nullable=False),
        sa.Column("command_json", sa.Text(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("total_steps", sa.Integer(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("events_offset", sa.Integer(), nullable=False),
        sa.Column("latest_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("job_id"),
    )
    sa.Table(
        "conversations",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("prompt_version", sa.String(), nullable=False),
        sa.Column("cache_key", sa.String(), nullable=False),
        sa.Column("messages_json", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("finish_reason", sa.String(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["synth_items.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "step", "cache_key", name="uq_conversation_step"),
    )
    sa.Index("ix_conversations_item_id", metadata.tables["conversations"].c.item_id)
    sa.Table(
        "eval_results",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("objective", sa.String(), nullable=False),
        sa.Column("task_id", sa.String(), nullable=False),
        sa.Column("task_order", sa.String(), nullable=False),
        sa.Column("gt", sa.String(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("raw_output", sa.Text(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["eval_runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "objective", "task_id", "task_order", name="uq_eval_result"),
    )
    sa.Index(
        "ix_eval_results_run_objective",
        metadata.tables["eval_results"].c.run_id,
        metadata.tables["eval_results"].c.objective,
        metadata.tables["eval_results"].c.id,
    )
    sa.Table(
        "pairs",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("criteria", sa.Text(), nullable=False),
        sa.Column("chosen", sa.Text(), nullable=False),
        sa.Column("rejected", sa.Text(), nullable=False),
        sa.Column("feedback", sa.Text(), nullable=False),
        sa.Column("language", sa.String(), nullable=False),
        sa.Column("commit_id", sa.Integer(), nullable=True),
        sa.Column("instruction_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("meta_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["commit_id"], ["commits.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("content_hash"),
    )
    sa.Index("ix_pairs_source", metadata.tables["pairs"].c.source)
    sa.Index("ix_pairs_status", metadata.tables["pairs"].c.status)
    sa.Table(
        "train_metrics",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=False),
        sa.Column("lr", sa.Float(), nullable=False),
        sa.Column("grad_norm", sa.Float(), nullable=True),
        sa.Column("tokens_per_s", sa.Float(), nullable=True),
        sa.Column("samples_per_s", sa.Float(), nullable=True),
        sa.Column("eta_s", sa.Float(), nullable=True),
        sa.Column("gpu_mem_gb", sa.Float(), nullable=True),
        sa.Column("gpu_util", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["train_runs.job_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Index(
        "ix_train_metrics_run_step", metadata.tables["train_metrics"].c.job_id, metadata.tables["train_metrics"].c.step
    )
    sa.Table(
        "pair_analysis",
        metadata,
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("chosen_parses", sa.Boolean(), nullable=False),
        sa.Column("rejected_parses", sa.Boolean(), nullable=False),
        sa.Column("chosen_cc", sa.Float(), nullable=False),
        sa.Column("rejected_cc", sa.Float(), nullable=False),
        sa.Column("cc_delta", sa.Float(), nullable=False),
        sa.Column("chosen_mi", sa.Float(), nullable=False),
        sa.Column("rejected_mi", sa.Float(), nullable=False),
        sa.Column("mi_delta", sa.Float(), nullable=False),
        sa.Column("chosen_loc", sa.Integer(), nullable=False),
        sa.Column("rejected_loc", sa.Integer(), nullable=False),
        sa.Column("loc_delta", sa.Integer(), nullable=False),
        sa.Column("chosen_volume", sa.Float(), nullable=False),
        sa.Column("rejected_volume", sa.Float(), nullable=False),
        sa.Column("volume_delta", sa.Float(), nullable=False),
        sa.Column("chosen_bandit", sa.Integer(), nullable=False),
        sa.Column("rejected_bandit", sa.Integer(), nullable=False),
        sa.Column("bandit_delta", sa.Integer(), nullable=False),
        sa.Column("findings_json", sa.Text(), nullable=False),
        sa.Column("diff_size", sa.Integer(), nullable=False),
        sa.Column("length_ratio", sa.Float(), nullable=False),
        sa.Column("identical", sa.Boolean(), nullable=False),
        sa.Column("chosen_norm_hash", sa.String(), nullable=False),
        sa.Column("rejected_norm_hash", sa.String(), nullable=False),
        sa.Column("dup_cluster", sa.Integer(), nullable=True),
        sa.Column("duplicate", sa.Boolean(), nullable=False),
        sa.Column("contamination", sa.Float(), nullable=True),
        sa.Column("contamination_chosen", sa.Float(), nullable=True),
        sa.Column("contamination_rejected", sa.Float(), nullable=True),
        sa.Column("contamination_task", sa.String(), nullable=True),
        sa.Column("analysed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"]),
        sa.PrimaryKeyConstraint("pair_id"),
    )
    sa.Index("ix_pair_analysis_chosen_norm_hash", metadata.tables["pair_analysis"].c.chosen_norm_hash)
    sa.Index("ix_pair_analysis_chosen_parses", metadata.tables["pair_analysis"].c.chosen_parses)
    sa.Index("ix_pair_analysis_contamination", metadata.tables["pair_analysis"].c.contamination)
    sa.Index("ix_pair_analysis_dup", metadata.tables["pair_analysis"].c.dup_cluster)
    sa.Index("ix_pair_analysis_rejected_parses", metadata.tables["pair_analysis"].c.rejected_parses)
    return metadata
