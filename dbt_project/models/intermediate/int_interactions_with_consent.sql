-- Every social / email / mobile interaction with its person, whether it is
-- a marketing send, the consent scope it is checked against, the marketing
-- consent row in force at its occurred_at (if any) and the sentiment of its
-- text (social events scored by the pipeline). Consent history rows of one
-- person/purpose/scope are disjoint half-open intervals, so at most one row
-- matches an instant. A view (macros/events/interactions_with_consent.sql):
-- fct_interactions runs the same SQL restricted to the events it rebuilds.

{{ config(materialized='view') }}

{{ interactions_with_consent() }}
