-- Returns and cancellations: reasons, amounts, and the share coming from repeat returners
-- (customers with at least three returns in the 180 days before the period ends).
with repeaters as (
    select r.account_id
    from orders.returns r
    where r.requested_at >= (:period_end)::timestamptz - interval '180 days'
      and r.requested_at < :period_end
    group by r.account_id
    having count(*) >= 3
),
returned as (
    select 'return' as kind, rr.label as reason, r.account_id,
           coalesce(sum(ri.refund_amount), 0) as amount
    from orders.returns r
    join ref.return_reasons rr on rr.id = r.reason_id
    left join orders.return_items ri on ri.return_id = r.id
    where r.requested_at >= :period_start and r.requested_at < :period_end
    group by r.id, rr.label, r.account_id
),
cancelled as (
    select 'cancellation' as kind, cr.label as reason, o.account_id,
           c.refunded_amount as amount
    from orders.cancellations c
    join ref.cancellation_reasons cr on cr.id = c.reason_id
    join orders.orders o on o.id = c.order_id
    where c.cancelled_at >= :period_start and c.cancelled_at < :period_end
),
everything as (
    select * from returned
    union all
    select * from cancelled
)
select
    e.kind,
    e.reason,
    count(*) as cases,
    sum(e.amount) as amount,
    count(*) filter (where rp.account_id is not null) as from_repeat_returners,
    round(count(*) filter (where rp.account_id is not null)::numeric / count(*), 4)
        as repeat_share
from everything e
left join repeaters rp on rp.account_id = e.account_id
group by e.kind, e.reason
order by e.kind collate "C", cases desc, e.reason collate "C"
