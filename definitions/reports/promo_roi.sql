-- Campaigns, discounts and promo codes: orders with a promo, revenue, average basket,
-- discount given, repeat purchases within 30 days, and ROI against ad spend.
with redeemed as (
    select d.campaign_id, pr.order_id, pr.account_id, pr.discount_amount, o.total,
           o.placed_at
    from marketing.promo_redemptions pr
    join marketing.promo_codes pc on pc.id = pr.promo_code_id
    join marketing.discounts d on d.id = pc.discount_id
    join orders.orders o on o.id = pr.order_id
    where pr.redeemed_at >= :period_start and pr.redeemed_at < :period_end
),
repeat_buyers as (
    select rd.campaign_id, count(distinct rd.account_id) as repeaters
    from redeemed rd
    where exists (select 1 from orders.orders later
                  where later.account_id = rd.account_id
                    and later.placed_at > rd.placed_at
                    and later.placed_at <= rd.placed_at + interval '30 days')
    group by rd.campaign_id
),
spend as (
    select a.campaign_id, sum(a.amount) as ad_spend
    from marketing.ad_spend a
    where a.day >= (:period_start)::date and a.day < (:period_end)::date
    group by a.campaign_id
),
totals as (
    select count(*) as all_orders
    from orders.orders o
    where o.placed_at >= :period_start and o.placed_at < :period_end
)
select
    coalesce(c.name, 'no campaign') as campaign,
    count(rd.order_id) as promo_orders,
    round(count(rd.order_id)::numeric / nullif(max(t.all_orders), 0), 4) as promo_order_share,
    coalesce(sum(rd.total), 0) as revenue,
    round(avg(rd.total), 2) as avg_basket,
    coalesce(sum(rd.discount_amount), 0) as discount_given,
    coalesce(max(rb.repeaters), 0) as repeat_buyers_30d,
    coalesce(max(sp.ad_spend), 0) as ad_spend,
    round((coalesce(sum(rd.total), 0) - coalesce(max(sp.ad_spend), 0)
           - coalesce(sum(rd.discount_amount), 0))
          / nullif(coalesce(max(sp.ad_spend), 0) + coalesce(sum(rd.discount_amount), 0), 0), 3)
        as roi
from redeemed rd
left join marketing.campaigns c on c.id = rd.campaign_id
left join repeat_buyers rb on rb.campaign_id = rd.campaign_id
left join spend sp on sp.campaign_id = rd.campaign_id
cross join totals t
group by coalesce(c.name, 'no campaign')
order by revenue desc
