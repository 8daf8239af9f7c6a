-- Engagement and retention: customers grouped by the month of their first purchase (the 12
-- months before the period ends), and the share still buying in each week after it.
with first_orders as (
    select o.account_id, min(o.placed_at) as first_at
    from orders.orders o
    where o.status not in ('cancelled')
    group by o.account_id
),
cohorts as (
    select fo.account_id, fo.first_at,
           date_trunc('month', fo.first_at at time zone :timezone) as cohort_month
    from first_orders fo
    where fo.first_at >= (:period_end)::timestamptz - interval '12 months'
      and fo.first_at < :period_end
),
activity as (
    select c.cohort_month,
           floor(extract(epoch from o.placed_at - c.first_at) / 604800)::int as week,
           count(distinct o.account_id) as active
    from cohorts c
    join orders.orders o on o.account_id = c.account_id
    where o.placed_at < :period_end and o.status not in ('cancelled')
    group by c.cohort_month, floor(extract(epoch from o.placed_at - c.first_at) / 604800)::int
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
order by cohort, a.week
