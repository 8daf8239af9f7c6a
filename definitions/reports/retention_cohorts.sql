-- Engagement and retention: customers grouped by the month of their first purchase (the 12
-- months before the period ends), and the share still buying in each week after it.
with cohorts as (
    select fp.account_id, fp.first_purchase_at,
           date_trunc('month', fp.first_purchase_at) as cohort_month
    from first_purchases fp
    where fp.first_purchase_at >= (:period_end)::timestamptz - interval '12 months'
      and fp.first_purchase_at < :period_end
),
activity as (
    select c.cohort_month,
           floor(extract(epoch from p.placed_at - c.first_purchase_at) / 604800)::int as week,
           count(distinct p.account_id) as active
    from cohorts c
    join purchases p on p.account_id = c.account_id
    where p.placed_at < :period_end
    group by c.cohort_month,
             floor(extract(epoch from p.placed_at - c.first_purchase_at) / 604800)::int
),
sizes as (
    select c.cohort_month, count(*) as customers from cohorts c group by c.cohort_month
)
select
    to_char(s.cohort_month, 'YYYY-MM') as cohort,
    s.customers,
    a.week,
    a.active,
    round(a.active::numeric / s.customers, 4) as retention
from sizes s
join activity a on a.cohort_month = s.cohort_month
where a.week between 0 and 12
order by s.cohort_month, a.week
