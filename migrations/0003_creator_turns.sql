CREATE TABLE "creator_turns" (
	"owner_id" uuid PRIMARY KEY NOT NULL,
	"last_served_at" timestamp with time zone NOT NULL
);
