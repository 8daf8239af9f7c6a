-- New accounts in the period by region and acquisition channel, and how many of them ordered.
select
    r.name as region,
    ch.label as channel,
    count(*) as new_accounts,
    count(*) filter (where exists (
        select 1 from orders.orders o
        where o.account_id = a.id and o.placed_at < :period_end
    )) as ordering_accounts
from users.accounts a
join ref.regions r on r.id = a.region_id
join users.acquisition_channels ch on ch.id = a.channel_id
where a.created_at >= :period_start
  and a.created_at < :period_end
group by r.name, ch.label
order by new_accounts desc
