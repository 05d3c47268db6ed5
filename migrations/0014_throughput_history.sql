-- A task's chunks done per closed minute, folded from results rows by the reader
-- (docs/architecture.md, Throughput history): the submit path never writes it.
CREATE TABLE "task_throughput" (
	"task_id" uuid NOT NULL,
	"minute" timestamp with time zone NOT NULL,
	"done" integer NOT NULL,
	CONSTRAINT "task_throughput_task_id_minute_pk" PRIMARY KEY("task_id","minute")
);
--> statement-breakpoint
ALTER TABLE "task_throughput" ADD CONSTRAINT "task_throughput_task_id_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "public"."tasks"("id") ON DELETE cascade ON UPDATE no action;