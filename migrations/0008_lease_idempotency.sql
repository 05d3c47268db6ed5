CREATE TABLE "lease_requests" (
	"volunteer_id" uuid NOT NULL,
	"key" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "lease_requests_volunteer_id_key_pk" PRIMARY KEY("volunteer_id","key")
);
--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "request_key" text;--> statement-breakpoint
CREATE INDEX "lease_requests_created_idx" ON "lease_requests" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "leases_request_key_idx" ON "leases" USING btree ("volunteer_id","request_key") WHERE request_key IS NOT NULL;