-- Schema of a SQLite store written by commit 1f40469 (PRAGMA user_version 1).
-- Generated from that commit's make_engine; kept to test migrations from it.
CREATE TABLE blobs (
	sha VARCHAR NOT NULL, 
	size INTEGER NOT NULL, 
	text TEXT NOT NULL, 
	PRIMARY KEY (sha)
);
CREATE TABLE commits (
	id INTEGER NOT NULL, 
	repository_id INTEGER NOT NULL, 
	job_id INTEGER, 
	sha VARCHAR NOT NULL, 
	parent_sha VARCHAR NOT NULL, 
	author VARCHAR NOT NULL, 
	author_email VARCHAR NOT NULL, 
	authored_at DATETIME NOT NULL, 
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
CREATE TABLE jobs (
	id INTEGER NOT NULL, 
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
	created_at DATETIME NOT NULL, 
	started_at DATETIME, 
	updated_at DATETIME, 
	finished_at DATETIME, 
	error TEXT, 
	summary_json TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE pairs (
	id INTEGER NOT NULL, 
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
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(commit_id) REFERENCES commits (id), 
	FOREIGN KEY(job_id) REFERENCES jobs (id), 
	UNIQUE (content_hash)
);
CREATE TABLE repositories (
	id INTEGER NOT NULL, 
	path VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	license VARCHAR, 
	head_sha VARCHAR, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (path)
);
CREATE INDEX ix_commits_content_key ON commits (content_key);
CREATE INDEX ix_commits_language ON commits (language);
CREATE INDEX ix_commits_path ON commits (path);
CREATE INDEX ix_commits_repo_id ON commits (repository_id, id);
CREATE INDEX ix_commits_sha ON commits (sha);
CREATE INDEX ix_jobs_kind ON jobs (kind);
CREATE INDEX ix_jobs_state ON jobs (state);
CREATE INDEX ix_pairs_source ON pairs (source);
CREATE INDEX ix_pairs_status ON pairs (status);
PRAGMA user_version = 1;
