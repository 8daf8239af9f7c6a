-- User base growth and structure: new accounts, first-time and returning buyers,
-- by region and acquisition channel, for the period.
select
    r.name as region,
    ch.label as channel,
    count(*) filter (where a.created_at >= :period_start) as new_accounts,
    count(*) filter (where ac.account_id is not null and fp.first_purchase_at >= :period_start)
        as first_time_buyers,
    count(*) filter (where ac.account_id is not null and fp.first_purchase_at < :period_start)
        as returning_buyers,
    count(*) as accounts_total
from users.accounts a
join ref.regions r on r.id = a.region_id
join users.acquisition_channels ch on ch.id = a.channel_id
left join first_purchases fp on fp.account_id = a.id
left join active_customers ac on ac.account_id = a.id
where a.created_at < :period_end
group by r.id, r.name, ch.id, ch.label
order by new_accounts desc, r.name collate "C", ch.label collate "C"
