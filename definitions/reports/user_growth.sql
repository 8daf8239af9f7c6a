-- User base growth and structure: new accounts, first-time and returning buyers,
-- by region and acquisition channel, for the period.
with buyers as (
    select o.account_id, min(o.placed_at) as first_order_at
    from orders.orders o
    where o.placed_at < :period_end
    group by o.account_id
),
period_buyers as (
    select distinct o.account_id
    from orders.orders o
    where o.placed_at >= :period_start and o.placed_at < :period_end
)
select
    r.name as region,
    ch.label as channel,
    count(*) filter (where a.created_at >= :period_start and a.created_at < :period_end)
        as new_accounts,
    count(*) filter (where pb.account_id is not null and b.first_order_at >= :period_start)
        as first_time_buyers,
    count(*) filter (where pb.account_id is not null and b.first_order_at < :period_start)
        as returning_buyers,
    count(*) filter (where a.created_at < :period_end) as accounts_total
from users.accounts a
join ref.regions r on r.id = a.region_id
join users.acquisition_channels ch on ch.id = a.channel_id
left join buyers b on b.account_id = a.id
left join period_buyers pb on pb.account_id = a.id
group by r.name, ch.label
order by new_accounts desc, region, channel
