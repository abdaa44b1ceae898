mod codex_cli;
mod crash;
mod failures;
mod gateway;
mod lineage;
mod processes;
mod secrets;
mod sources;
