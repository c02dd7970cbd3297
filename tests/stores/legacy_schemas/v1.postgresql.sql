-- Schema of a PostgreSQL store written by commit 1fb2521 (schema_version 1).
-- Generated from that commit's metadata; kept to test migrations from it.
CREATE TABLE repositories (
	id SERIAL NOT NULL, 
	path VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	license VARCHAR, 
	head_sha VARCHAR, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (path)
);

CREATE TABLE blobs (
	sha VARCHAR NOT NULL, 
	size INTEGER NOT NULL, 
	text TEXT NOT NULL, 
	PRIMARY KEY (sha)
);

CREATE TABLE jobs (
	id SERIAL NOT NULL, 
	kind VARCHAR NOT NULL, 
	title VARCHAR NOT NULL, 
	state VARCHAR NOT NULL, 
	params_json TEXT NOT NULL, 
	done INTEGER NOT NULL, 
	total INTEGER, 
	pid INTEGER, 
	host VARCHAR, 
	log_path VARCHAR, 
	cancel_requested BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	started_at TIMESTAMP WITH TIME ZONE, 
	updated_at TIMESTAMP WITH TIME ZONE, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	error TEXT, 
	summary_json TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX ix_jobs_state ON jobs (state);

CREATE INDEX ix_jobs_kind ON jobs (kind);

CREATE TABLE review_actions (
	id SERIAL NOT NULL, 
	action VARCHAR NOT NULL, 
	pair_count INTEGER NOT NULL, 
	before_json TEXT NOT NULL, 
	undone BOOLEAN NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE instructions (
	id SERIAL NOT NULL, 
	text TEXT NOT NULL, 
	language VARCHAR NOT NULL, 
	source VARCHAR NOT NULL, 
	external_id VARCHAR, 
	content_hash VARCHAR NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (content_hash)
);

CREATE TABLE llm_cache (
	key VARCHAR NOT NULL, 
	model VARCHAR NOT NULL, 
	prompt_version VARCHAR NOT NULL, 
	text TEXT NOT NULL, 
	finish_reason VARCHAR NOT NULL, 
	prompt_tokens INTEGER NOT NULL, 
	completion_tokens INTEGER NOT NULL, 
	latency_s FLOAT NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (key)
);

CREATE TABLE commits (
	id SERIAL NOT NULL, 
	repository_id INTEGER NOT NULL, 
	job_id INTEGER, 
	sha VARCHAR NOT NULL, 
	parent_sha VARCHAR NOT NULL, 
	author VARCHAR NOT NULL, 
	author_email VARCHAR NOT NULL, 
	authored_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	message TEXT NOT NULL, 
	path VARCHAR NOT NULL, 
	old_path VARCHAR NOT NULL, 
	old_blob VARCHAR NOT NULL, 
	new_blob VARCHAR NOT NULL, 
	content_key VARCHAR NOT NULL, 
	lines_added INTEGER NOT NULL, 
	lines_removed INTEGER NOT NULL, 
	language VARCHAR NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_commit_file UNIQUE (repository_id, sha, path), 
	FOREIGN KEY(repository_id) REFERENCES repositories (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id), 
	FOREIGN KEY(old_blob) REFERENCES blobs (sha), 
	FOREIGN KEY(new_blob) REFERENCES blobs (sha)
);

CREATE INDEX ix_commits_sha ON commits (sha);

CREATE INDEX ix_commits_repo_id ON commits (repository_id, id);

CREATE INDEX ix_commits_content_key ON commits (content_key);

CREATE INDEX ix_commits_path ON commits (path);

CREATE INDEX ix_commits_language ON commits (language);

CREATE TABLE eval_runs (
	id SERIAL NOT NULL, 
	judge_spec VARCHAR NOT NULL, 
	judge_kind VARCHAR NOT NULL, 
	bench_dir VARCHAR NOT NULL, 
	bench_version VARCHAR NOT NULL, 
	objectives_json TEXT NOT NULL, 
	orders VARCHAR NOT NULL, 
	task_limit INTEGER, 
	strip_comments BOOLEAN, 
	lineage_json TEXT NOT NULL, 
	parser_version VARCHAR NOT NULL, 
	state VARCHAR NOT NULL, 
	total INTEGER NOT NULL, 
	objective_totals_json TEXT NOT NULL, 
	job_id INTEGER, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	finished_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);

CREATE INDEX ix_eval_runs_judge_kind ON eval_runs (judge_kind);

CREATE INDEX ix_eval_runs_state ON eval_runs (state);

CREATE INDEX ix_eval_runs_bench_version ON eval_runs (bench_version);

CREATE TABLE exports (
	id SERIAL NOT NULL, 
	out_dir VARCHAR NOT NULL, 
	formats VARCHAR NOT NULL, 
	filter_json TEXT NOT NULL, 
	pair_ids_hash VARCHAR NOT NULL, 
	pair_count INTEGER NOT NULL, 
	manifest_json TEXT NOT NULL, 
	job_id INTEGER, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);

CREATE TABLE train_runs (
	job_id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	recipe_path VARCHAR NOT NULL, 
	recipe_json TEXT NOT NULL, 
	run_dir VARCHAR NOT NULL, 
	command_json TEXT NOT NULL, 
	step INTEGER NOT NULL, 
	total_steps INTEGER, 
	exit_code INTEGER, 
	events_offset INTEGER NOT NULL, 
	latest_json TEXT NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (job_id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);

CREATE TABLE checkpoints (
	id SERIAL NOT NULL, 
	path VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	job_id INTEGER, 
	step INTEGER, 
	verified BOOLEAN NOT NULL, 
	problems TEXT NOT NULL, 
	lineage_json TEXT NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);

CREATE INDEX ix_checkpoints_kind ON checkpoints (kind);

CREATE INDEX ix_checkpoints_path ON checkpoints (path);

CREATE TABLE synth_items (
	id SERIAL NOT NULL, 
	method VARCHAR NOT NULL, 
	config_key VARCHAR NOT NULL, 
	subject_id INTEGER NOT NULL, 
	state VARCHAR NOT NULL, 
	retryable BOOLEAN NOT NULL, 
	reason TEXT NOT NULL, 
	job_id INTEGER, 
	pair_id INTEGER, 
	conversation_id INTEGER, 
	attempts INTEGER NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_synth_item UNIQUE (config_key, subject_id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);

CREATE INDEX ix_synth_items_claim ON synth_items (config_key, state, id);

CREATE TABLE llm_servers (
	id SERIAL NOT NULL, 
	job_id INTEGER, 
	model VARCHAR NOT NULL, 
	base_url VARCHAR NOT NULL, 
	port INTEGER NOT NULL, 
	pid INTEGER, 
	state VARCHAR NOT NULL, 
	log_path VARCHAR NOT NULL, 
	command_json TEXT NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	stopped_at TIMESTAMP WITH TIME ZONE, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);

CREATE TABLE pairs (
	id SERIAL NOT NULL, 
	source VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	instruction TEXT NOT NULL, 
	criteria TEXT NOT NULL, 
	chosen TEXT NOT NULL, 
	rejected TEXT NOT NULL, 
	feedback TEXT NOT NULL, 
	language VARCHAR NOT NULL, 
	commit_id INTEGER, 
	instruction_id INTEGER, 
	conversation_id INTEGER, 
	job_id INTEGER, 
	content_hash VARCHAR NOT NULL, 
	meta_json TEXT NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(commit_id) REFERENCES commits (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id), 
	UNIQUE (content_hash)
);

CREATE INDEX ix_pairs_source ON pairs (source);

CREATE INDEX ix_pairs_status ON pairs (status);

CREATE TABLE eval_results (
	id SERIAL NOT NULL, 
	run_id INTEGER NOT NULL, 
	objective VARCHAR NOT NULL, 
	task_id VARCHAR NOT NULL, 
	task_order VARCHAR NOT NULL, 
	gt VARCHAR NOT NULL, 
	decision VARCHAR NOT NULL, 
	raw_output TEXT NOT NULL, 
	latency_s FLOAT NOT NULL, 
	prompt_tokens INTEGER NOT NULL, 
	completion_tokens INTEGER NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_eval_result UNIQUE (run_id, objective, task_id, task_order), 
	FOREIGN KEY(run_id) REFERENCES eval_runs (id)
);

CREATE INDEX ix_eval_results_run_objective ON eval_results (run_id, objective, id);

CREATE TABLE train_metrics (
	id SERIAL NOT NULL, 
	job_id INTEGER NOT NULL, 
	step INTEGER NOT NULL, 
	time FLOAT NOT NULL, 
	loss FLOAT NOT NULL, 
	lr FLOAT NOT NULL, 
	grad_norm FLOAT, 
	tokens_per_s FLOAT, 
	samples_per_s FLOAT, 
	eta_s FLOAT, 
	gpu_mem_gb FLOAT, 
	gpu_util FLOAT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_id) REFERENCES train_runs (job_id)
);

CREATE INDEX ix_train_metrics_run_step ON train_metrics (job_id, step);

CREATE TABLE conversations (
	id SERIAL NOT NULL, 
	item_id INTEGER NOT NULL, 
	job_id INTEGER, 
	method VARCHAR NOT NULL, 
	step VARCHAR NOT NULL, 
	role VARCHAR NOT NULL, 
	model VARCHAR NOT NULL, 
	prompt_version VARCHAR NOT NULL, 
	cache_key VARCHAR NOT NULL, 
	messages_json TEXT NOT NULL, 
	response TEXT NOT NULL, 
	finish_reason VARCHAR NOT NULL, 
	prompt_tokens INTEGER NOT NULL, 
	completion_tokens INTEGER NOT NULL, 
	latency_s FLOAT NOT NULL, 
	cached BOOLEAN NOT NULL, 
	outcome VARCHAR NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_conversation_step UNIQUE (item_id, step, cache_key), 
	FOREIGN KEY(item_id) REFERENCES synth_items (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id)
);

CREATE INDEX ix_conversations_item_id ON conversations (item_id);

CREATE TABLE pair_analysis (
	pair_id INTEGER NOT NULL, 
	content_hash VARCHAR NOT NULL, 
	chosen_parses BOOLEAN NOT NULL, 
	rejected_parses BOOLEAN NOT NULL, 
	chosen_cc FLOAT NOT NULL, 
	rejected_cc FLOAT NOT NULL, 
	cc_delta FLOAT NOT NULL, 
	chosen_mi FLOAT NOT NULL, 
	rejected_mi FLOAT NOT NULL, 
	mi_delta FLOAT NOT NULL, 
	chosen_loc INTEGER NOT NULL, 
	rejected_loc INTEGER NOT NULL, 
	loc_delta INTEGER NOT NULL, 
	chosen_volume FLOAT NOT NULL, 
	rejected_volume FLOAT NOT NULL, 
	volume_delta FLOAT NOT NULL, 
	chosen_bandit INTEGER NOT NULL, 
	rejected_bandit INTEGER NOT NULL, 
	bandit_delta INTEGER NOT NULL, 
	findings_json TEXT NOT NULL, 
	diff_size INTEGER NOT NULL, 
	length_ratio FLOAT NOT NULL, 
	identical BOOLEAN NOT NULL, 
	chosen_norm_hash VARCHAR NOT NULL, 
	rejected_norm_hash VARCHAR NOT NULL, 
	dup_cluster INTEGER, 
	duplicate BOOLEAN NOT NULL, 
	contamination FLOAT, 
	contamination_chosen FLOAT, 
	contamination_rejected FLOAT, 
	contamination_task VARCHAR, 
	analysed_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	PRIMARY KEY (pair_id), 
	FOREIGN KEY(pair_id) REFERENCES pairs (id)
);

CREATE INDEX ix_pair_analysis_rejected_parses ON pair_analysis (rejected_parses);

CREATE INDEX ix_pair_analysis_chosen_parses ON pair_analysis (chosen_parses);

CREATE INDEX ix_pair_analysis_chosen_norm_hash ON pair_analysis (chosen_norm_hash);

CREATE INDEX ix_pair_analysis_dup ON pair_analysis (dup_cluster);

CREATE INDEX ix_pair_analysis_contamination ON pair_analysis (contamination);


CREATE TABLE schema_version (version INTEGER NOT NULL);

INSERT INTO schema_version (version) VALUES (1);
