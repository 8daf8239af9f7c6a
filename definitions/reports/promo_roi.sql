-- Campaigns, discounts and promo codes: the month's purchases with a redeemed code per
-- campaign (or none), their net revenue, average basket, discount given, repeat buyers
-- within 30 days, and return on the campaign's ad spend. Campaigns that only spent show too.
with promo as (
    select p.order_id, p.account_id, p.net_revenue, p.promo_discount, p.campaign_id,
           exists (select 1 from repeat_buyers rb where rb.order_id = p.order_id) as repeated
    from purchases p
    where p.promo_code_id is not null
      and p.placed_at >= :period_start and p.placed_at < :period_end
),
per_campaign as (
    select pr.campaign_id,
           count(*) as promo_orders,
           sum(pr.net_revenue) as revenue,
           sum(pr.promo_discount) as discount_given,
           count(distinct pr.account_id) filter (where pr.repeated) as repeat_buyers
    from promo pr
    group by pr.campaign_id
),
rows_ as (
    -- Campaigns with promo purchases or spend; NULL is the row for codes without a campaign.
    select pc.campaign_id from per_campaign pc
    union
    select cs.campaign_id from campaign_spend cs
),
totals as (
    select count(*) as purchases
    from purchases p
    where p.placed_at >= :period_start and p.placed_at < :period_end
)
select
    coalesce(c.name, 'no campaign') as campaign,
    coalesce(pc.promo_orders, 0) as promo_orders,
    round(coalesce(pc.promo_orders, 0)::numeric / nullif(t.purchases, 0), 4)
        as promo_order_share,
    round(coalesce(pc.revenue, 0), 2) as revenue,
    round(pc.revenue / nullif(pc.promo_orders, 0), 2) as avg_basket,
    round(coalesce(pc.discount_given, 0), 2) as discount_given,
    coalesce(pc.repeat_buyers, 0) as repeat_buyers_30d,
    round(coalesce(cs.ad_spend, 0), 2) as ad_spend,
    round((coalesce(pc.revenue, 0) - cs.ad_spend) / nullif(cs.ad_spend, 0), 3) as roi
from rows_ r
left join marketing.campaigns c on c.id = r.campaign_id
left join per_campaign pc on pc.campaign_id is not distinct from r.campaign_id
left join campaign_spend cs on cs.campaign_id = r.campaign_id
cross join totals t
order by revenue desc, ad_spend desc, coalesce(c.name, 'no campaign') collate "C", r.campaign_id
